/* test_resp_value.c -- the view of one complete reply (resp/resp_value.h). */
#include <criterion/criterion.h>
#include <string.h>

#include "resp/resp_value.h"

static size_t decode(const char *s, resp_value *v)
{
    return resp_value_decode(s, strlen(s), v);
}

Test(value, scalars)
{
    resp_value v;
    cr_assert_eq(decode("+OK\r\n", &v), 5);
    cr_assert_eq(v.type, '+');
    cr_assert_eq(v.len, 2);
    cr_assert_eq(memcmp(v.str, "OK", 2), 0);
    cr_assert_eq(decode("-ERR bad\r\n", &v), 10);
    cr_assert_eq(v.type, '-');
    cr_assert_eq(v.len, 7);
    cr_assert_eq(decode(":-42\r\n", &v), 6);
    cr_assert_eq(v.integer, -42);
    cr_assert_eq(decode("$-1\r\n", &v), 5);
    cr_assert_eq(v.type, 'n');
    cr_assert_eq(decode("*-1\r\n", &v), 5);
    cr_assert_eq(v.type, 'n');
    cr_assert_eq(resp_value_decode("$3\r\na\0c\r\n", 9, &v), 9);
    cr_assert_eq(v.type, '$');
    cr_assert_eq(v.len, 3);
    cr_assert_eq(v.str[1], 0);
}

Test(value, nested_array_walk)
{
    const char *s = "*4\r\n$3\r\nabc\r\n*2\r\n:1\r\n*1\r\n+x\r\n$-1\r\n:7\r\n";
    resp_value v, e;
    cr_assert_eq(decode(s, &v), strlen(s));
    cr_assert_eq(v.type, '*');
    cr_assert_eq(v.integer, 4);
    size_t pos = 0;
    char types[5] = {0};
    int n = 0;
    while (resp_value_next(&v, &pos, &e)) types[n++] = e.type;
    cr_assert_eq(n, 4);
    cr_assert_str_eq(types, "$*n:");
    /* the nested array is walked the same way */
    pos = 0;
    resp_value_next(&v, &pos, &e);
    resp_value_next(&v, &pos, &e);
    resp_value inner;
    size_t ipos = 0;
    cr_assert(resp_value_next(&e, &ipos, &inner));
    cr_assert_eq(inner.integer, 1);
    cr_assert(resp_value_next(&e, &ipos, &inner));
    cr_assert_eq(inner.type, '*');
    cr_assert_not(resp_value_next(&e, &ipos, &inner));
}

Test(value, incomplete_or_malformed_is_refused_at_every_cut)
{
    const char *s = "*3\r\n:1\r\n$32\r\n0123456789abcdef0123456789abcdef\r\n:2\r\n";
    resp_value v;
    size_t len = strlen(s);
    for (size_t cut = 0; cut < len; cut++) cr_assert_eq(resp_value_decode(s, cut, &v), 0, "cut %zu", cut);
    cr_assert_eq(resp_value_decode(s, len, &v), len);
    const char *bad[] = {"?x\r\n", "$3\r\nabcd\r\n", ":12a\r\n", "*x\r\n", "$-2\r\n", "+OK\n", "*1\r\n!\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(decode(bad[i], &v), 0, "%s", bad[i]);
}
