/* test_session.c -- the ROLE reply parser behind the session guarantees:
 * rcproxy reads replication offsets from ROLE replies it pipelines itself. */
#include <criterion/criterion.h>
#include <string.h>

#include "replication/session.h"

static int parse(const char *reply, long long *off)
{
    return repl_parse_role_offset(reply, strlen(reply), off);
}

Test(role, master)
{
    long long off = -7;
    cr_assert_eq(parse("*3\r\n$6\r\nmaster\r\n:3129659\r\n*1\r\n*3\r\n$9\r\n127.0.0.1\r\n"
                       "$4\r\n9001\r\n$7\r\n3129242\r\n", &off), 0);
    cr_assert_eq(off, 3129659);
    cr_assert_eq(parse("*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n", &off), 0);
    cr_assert_eq(off, 0);
}

Test(role, replica)
{
    long long off = -7;
    cr_assert_eq(parse("*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:6379\r\n$9\r\nconnected\r\n"
                       ":3167038\r\n", &off), 0);
    cr_assert_eq(off, 3167038);
    /* a replica still connecting reports -1 */
    cr_assert_eq(parse("*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:6379\r\n$7\r\nconnect\r\n"
                       ":-1\r\n", &off), 0);
    cr_assert_eq(off, -1);
}

Test(role, rejects_what_is_not_a_role_reply)
{
    long long off = 42;
    cr_assert_eq(parse("-ERR unknown command 'ROLE'\r\n", &off), -1);
    cr_assert_eq(parse("*3\r\n$8\r\nsentinel\r\n*0\r\n", &off), -1);
    cr_assert_eq(parse("*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n", &off), -1);   /* truncated */
    cr_assert_eq(parse("*3\r\n$6\r\nmaster\r\n", &off), -1);
    cr_assert_eq(parse("", &off), -1);
    cr_assert_eq(parse("*1\r\n$60000\r\nmaster\r\n", &off), -1);               /* bulk past the end */
    cr_assert_eq(parse("*3\r\n:6\r\n:5\r\n:4\r\n", &off), -1);   /* the role is no string */
    cr_assert_eq(parse("*2\r\n*1\r\n$6\r\nmaster\r\n:5\r\n", &off), -1);
    cr_assert_eq(off, 42, "a failed parse leaves the offset alone");
}

/* Every prefix of a valid reply is rejected or parsed, never read past. */
Test(role, every_prefix)
{
    static const char r[] = "*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:6379\r\n$9\r\nconnected\r\n:77\r\n";
    size_t n = strlen(r);
    for (size_t k = 0; k < n; k++) {
        char *copy = malloc(k ? k : 1);
        cr_assert_not_null(copy);
        memcpy(copy, r, k);
        long long off = 5;
        int rc = repl_parse_role_offset(copy, k, &off);
        free(copy);
        cr_assert(rc == -1 || off == 77, "prefix %zu: rc %d off %lld", k, rc, off);
    }
}
