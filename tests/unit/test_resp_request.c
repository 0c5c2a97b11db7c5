/* test_resp_request.c -- unit tests of the client request parser.
 *
 * Every valid input goes through expect_ok(), which parses it whole, split
 * at every byte (prefix, then the whole), and growing one byte at a time
 * through one parser; every call gets a fresh exact-size copy of the bytes,
 * so the buffer "moves" between calls and ASan catches any read past len.
 * Expected values for inline quoting were checked against redis-server 7.0.15
 * (RPUSH of the inline arguments, then LRANGE). */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp/resp_request.h"

typedef struct {
    const char *p;
    size_t n;
} bytes;

#define B(lit) ((bytes){ (lit), sizeof(lit) - 1 })

/* Limits applied to every parser a helper creates. */
typedef struct {
    long long max_bulk_len;
    long long max_multibulk_len;
    int unauthenticated;
} limits;

static const limits DEFAULTS = { RESP_DEFAULT_MAX_BULK_LEN, RESP_DEFAULT_MAX_MULTIBULK_LEN, 0 };
static const limits UNAUTH = { RESP_DEFAULT_MAX_BULK_LEN, RESP_DEFAULT_MAX_MULTIBULK_LEN, 1 };

static void init_with(resp_req_parser *p, const limits *l)
{
    resp_req_init(p);
    p->max_bulk_len = l->max_bulk_len;
    p->max_multibulk_len = l->max_multibulk_len;
    p->unauthenticated = l->unauthenticated;
}

/* Parse buf[0..n) from a fresh malloc'd copy of exactly n bytes, freed after
 * the call: the parser must keep offsets only, and must not read past n. */
static int parse_moved(resp_req_parser *p, const char *buf, size_t n)
{
    char *copy = malloc(n ? n : 1);
    int rc;
    cr_assert_not_null(copy);
    if (n) memcpy(copy, buf, n);
    rc = resp_req_parse(p, copy, n);
    free(copy);
    return rc;
}

/* Assert that the last RESP_OK of p describes the expected request.  buf is
 * the request start (offsets are relative to it, wherever it was parsed). */
static void check_result(const resp_req_parser *p, const char *buf, size_t req_len,
                         size_t argc, const bytes *argv)
{
    cr_assert_eq(p->req_len, req_len, "req_len %zu, expected %zu", p->req_len, req_len);
    cr_assert_eq(p->argc, argc, "argc %zu, expected %zu", p->argc, argc);
    for (size_t i = 0; i < argc; i++) {
        size_t len;
        const char *a = resp_req_arg(p, buf, i, &len);
        cr_assert_eq(len, argv[i].n, "arg %zu: len %zu, expected %zu", i, len, argv[i].n);
        cr_assert(memcmp(a, argv[i].p, len) == 0, "arg %zu: bytes differ", i);
    }
}

/* in must start with one valid request of req_len bytes, whose arguments are
 * argv[0..argc).  Checks it whole, split at every byte and growing byte by
 * byte, and that the parser needs no reset between requests. */
static void expect_ok_l(const limits *l, bytes in, size_t req_len, size_t argc, const bytes *argv)
{
    resp_req_parser p;
    int copy = in.n <= 4096; /* O(n^2) copying: only for small inputs */
    int rc;

    cr_assert(req_len <= in.n);

    /* whole, then again through the same parser (no reset needed) */
    init_with(&p, l);
    for (int round = 0; round < 3; round++) {
        rc = parse_moved(&p, in.p, in.n);
        cr_assert_eq(rc, RESP_OK, "round %d: rc %d err '%s'", round, rc, p.err);
        check_result(&p, in.p, req_len, argc, argv);
    }
    resp_req_free(&p);

    /* split at every byte: prefix of k bytes, then the whole buffer */
    for (size_t k = 0; k <= in.n; k += (copy ? 1 : 1 + in.n / 97)) {
        init_with(&p, l);
        rc = copy ? parse_moved(&p, in.p, k) : resp_req_parse(&p, in.p, k);
        if (k < req_len) {
            cr_assert_eq(rc, RESP_AGAIN, "split %zu/%zu: rc %d err '%s'", k, in.n, rc, p.err);
            rc = copy ? parse_moved(&p, in.p, in.n) : resp_req_parse(&p, in.p, in.n);
        }
        cr_assert_eq(rc, RESP_OK, "split %zu/%zu: rc %d err '%s'", k, in.n, rc, p.err);
        check_result(&p, in.p, req_len, argc, argv);
        resp_req_free(&p);
    }

    /* growing one byte at a time through one parser */
    init_with(&p, l);
    for (size_t k = 0; k <= req_len; k++) {
        rc = copy ? parse_moved(&p, in.p, k) : resp_req_parse(&p, in.p, k);
        if (k < req_len)
            cr_assert_eq(rc, RESP_AGAIN, "grow %zu/%zu: rc %d err '%s'", k, req_len, rc, p.err);
        else
            cr_assert_eq(rc, RESP_OK, "grow %zu: rc %d err '%s'", k, rc, p.err);
    }
    check_result(&p, in.p, req_len, argc, argv);
    resp_req_free(&p);
}

static void expect_ok(bytes in, size_t req_len, size_t argc, const bytes *argv)
{
    expect_ok_l(&DEFAULTS, in, req_len, argc, argv);
}

/* The whole input is one request. */
#define EXPECT_ONE(lit, argv) \
    expect_ok(B(lit), sizeof(lit) - 1, sizeof(argv) / sizeof((argv)[0]), (argv))

/* The input is a protocol error with exactly this text, whole, split at any
 * byte, and growing byte by byte (earlier prefixes may only be RESP_AGAIN);
 * the error is sticky. */
static void expect_err_l(const limits *l, bytes in, const char *err)
{
    resp_req_parser p;
    int copy = in.n <= 4096;
    size_t step = copy ? 1 : 1 + in.n / 97;
    int rc, seen_err = 0;

    init_with(&p, l);
    rc = parse_moved(&p, in.p, in.n);
    cr_assert_eq(rc, RESP_ERR, "rc %d, expected error '%s'", rc, err);
    cr_assert_str_eq(p.err, err);
    cr_assert_eq(p.argc, 0);
    rc = parse_moved(&p, in.p, in.n);
    cr_assert_eq(rc, RESP_ERR, "error is not sticky");
    cr_assert_str_eq(p.err, err);
    resp_req_free(&p);

    for (size_t k = 0; k <= in.n; k += step) {
        init_with(&p, l);
        rc = copy ? parse_moved(&p, in.p, k) : resp_req_parse(&p, in.p, k);
        if (rc == RESP_ERR) {
            cr_assert_str_eq(p.err, err, "split %zu", k);
        } else {
            cr_assert_eq(rc, RESP_AGAIN, "split %zu: rc %d", k, rc);
            rc = copy ? parse_moved(&p, in.p, in.n) : resp_req_parse(&p, in.p, in.n);
            cr_assert_eq(rc, RESP_ERR, "split %zu: rc %d", k, rc);
            cr_assert_str_eq(p.err, err, "split %zu", k);
        }
        resp_req_free(&p);
    }

    init_with(&p, l);
    for (size_t k = 0; k <= in.n; k++) {
        rc = copy ? parse_moved(&p, in.p, k) : resp_req_parse(&p, in.p, k);
        if (seen_err || rc == RESP_ERR) {
            cr_assert_eq(rc, RESP_ERR, "grow %zu: error was not sticky", k);
            cr_assert_str_eq(p.err, err, "grow %zu", k);
            seen_err = 1;
        } else {
            cr_assert_eq(rc, RESP_AGAIN, "grow %zu: rc %d", k, rc);
        }
    }
    cr_assert(seen_err, "growing input never produced the error");
    resp_req_free(&p);
}

static void expect_err(bytes in, const char *err)
{
    expect_err_l(&DEFAULTS, in, err);
}

/* A heap buffer holding prefix + n copies of byte c + suffix. */
static bytes make_filled(const char *prefix, size_t n, char c, const char *suffix)
{
    size_t lp = strlen(prefix), ls = strlen(suffix);
    char *b = malloc(lp + n + ls);
    cr_assert_not_null(b);
    memcpy(b, prefix, lp);
    memset(b + lp, c, n);
    memcpy(b + lp + n, suffix, ls);
    return (bytes){ b, lp + n + ls };
}

/* ---- multibulk ------------------------------------------------------------ */

Test(multibulk, set_command)
{
    bytes in = B("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n");
    bytes argv[] = { B("SET"), B("key"), B("value") };
    expect_ok(in, in.n, 3, argv);
}

Test(multibulk, offsets_point_into_the_request)
{
    resp_req_parser p;
    bytes in = B("*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n");
    resp_req_init(&p);
    cr_assert_eq(resp_req_parse(&p, in.p, in.n), RESP_OK);
    cr_assert_eq(p.is_inline, 0);
    cr_assert_eq(p.argv[0].off, 8);
    cr_assert_eq(p.argv[0].len, 4);
    cr_assert_eq(p.argv[1].off, 18);
    cr_assert_eq(p.argv[1].len, 2);
    resp_req_free(&p);
}

Test(multibulk, binary_payloads)
{
    bytes in = B("*3\r\n$3\r\nSET\r\n$4\r\n\r\n\0\n\r\n$0\r\n\r\n");
    bytes argv[] = { B("SET"), B("\r\n\0\n"), B("") };
    expect_ok(in, in.n, 3, argv);
}

Test(multibulk, bytes_after_payload_are_not_checked)
{
    /* Redis skips the 2 bytes after a payload without looking at them */
    bytes in = B("*2\r\n$4\r\nPINGxx$1\r\naXY");
    bytes argv[] = { B("PING"), B("a") };
    expect_ok(in, in.n, 2, argv);
}

Test(multibulk, count_line_ends_at_cr)
{
    /* as Redis: the byte after '\r' is skipped unchecked (redis-server 7.0.15
     * answers +PONG to this) */
    bytes in = B("*1\rx$4\rxPING\r\n");
    bytes argv[] = { B("PING") };
    expect_ok(in, in.n, 1, argv);
}

Test(multibulk, zero_and_negative_counts_are_skipped)
{
    expect_ok(B("*0\r\n"), 4, 0, NULL);
    expect_ok(B("*-1\r\n"), 5, 0, NULL);
    expect_ok(B("*-10\r\n"), 6, 0, NULL);
    expect_ok(B("*0\r\n*1\r\n$4\r\nPING\r\n"), 4, 0, NULL);
    expect_ok(B("*-9223372036854775808\r\n"), 23, 0, NULL);
}

Test(multibulk, trailing_data_is_not_consumed)
{
    bytes in = B("*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPI");
    bytes argv[] = { B("PING") };
    expect_ok(in, 14, 1, argv);
}

Test(multibulk, many_arguments)
{
    char buf[4096];
    size_t n = 0;
    bytes argv[100];
    char names[100][4];
    n += (size_t)sprintf(buf + n, "*100\r\n");
    for (int i = 0; i < 100; i++) {
        int l = sprintf(names[i], "%d", i);
        argv[i] = (bytes){ names[i], (size_t)l };
        n += (size_t)sprintf(buf + n, "$%d\r\n%s\r\n", l, names[i]);
    }
    expect_ok((bytes){ buf, n }, n, 100, argv);
}

/* ---- multibulk errors and limits ------------------------------------------ */

Test(multibulk_errors, invalid_multibulk_length)
{
    const char *e = "Protocol error: invalid multibulk length";
    expect_err(B("*abc\r\n"), e);
    expect_err(B("*\r\n"), e);
    expect_err(B("*01\r\n"), e);      /* string2ll: no leading zeros */
    expect_err(B("*-0\r\n"), e);
    expect_err(B("*+1\r\n"), e);
    expect_err(B("*1 \r\n"), e);
    expect_err(B("* 1\r\n"), e);
    expect_err(B("*1\n\r\n"), e);     /* the line ends at '\r', '\n' is content */
    expect_err(B("*1\0\r\n"), e);
    expect_err(B("*-\r\n"), e);
    expect_err(B("*9223372036854775808\r\n"), e);   /* overflow */
    expect_err(B("*99999999999999999999\r\n"), e);
    expect_err(B("*123456789012345678901\r\n"), e); /* 21 chars */
    expect_err(B("*2147483648\r\n"), e);            /* > INT_MAX, as Redis 7 */
    expect_err(B("*3000000000\r\n"), e);
}

Test(multibulk_errors, multibulk_length_limit)
{
    limits l = DEFAULTS;
    l.max_multibulk_len = 3;
    bytes argv[] = { B("a"), B("b"), B("c") };
    expect_ok_l(&l, B("*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"), 25, 3, argv);
    expect_err_l(&l, B("*4\r\n"), "Protocol error: invalid multibulk length");
}

Test(multibulk_errors, default_multibulk_limit_is_int_max)
{
    /* *2147483647 is accepted (then waits for arguments) */
    resp_req_parser p;
    resp_req_init(&p);
    cr_assert_eq(resp_req_parse(&p, "*2147483647\r\n", 13), RESP_AGAIN);
    resp_req_free(&p);
}

Test(multibulk_errors, unauthenticated_multibulk_length)
{
    bytes argv[10];
    char buf[256];
    size_t n = (size_t)sprintf(buf, "*10\r\n");
    for (int i = 0; i < 10; i++) {
        argv[i] = B("x");
        n += (size_t)sprintf(buf + n, "$1\r\nx\r\n");
    }
    expect_ok_l(&UNAUTH, (bytes){ buf, n }, n, 10, argv);
    expect_err_l(&UNAUTH, B("*11\r\n"), "Protocol error: unauthenticated multibulk length");
    /* invalid beats unauthenticated, as in Redis's order of checks */
    expect_err_l(&UNAUTH, B("*1x\r\n"), "Protocol error: invalid multibulk length");
    /* n <= 0 is still skipped */
    expect_ok_l(&UNAUTH, B("*-100\r\n"), 7, 0, NULL);
    /* authenticated: 11 is fine */
    resp_req_parser p;
    resp_req_init(&p);
    cr_assert_eq(resp_req_parse(&p, "*11\r\n", 5), RESP_AGAIN);
    resp_req_free(&p);
}

Test(multibulk_errors, expected_dollar)
{
    expect_err(B("*1\r\nx\r\n"), "Protocol error: expected '$', got 'x'");
    expect_err(B("*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n"), "Protocol error: expected '$', got 'f'");
    expect_err(B("*2\r\n$1\r\na\r\n:1\r\n"), "Protocol error: expected '$', got ':'");
    expect_err(B("*1\r\n*1\r\n"), "Protocol error: expected '$', got '*'");
    /* Redis 7 prints CR/LF as a space (seen from redis-server 7.0.15) */
    expect_err(B("*1\r\n\r\n"), "Protocol error: expected '$', got ' '");
    expect_err(B("*1\r\n\n\r\n"), "Protocol error: expected '$', got ' '");
    expect_err(B("*1\r\n\0\r\n"), "Protocol error: expected '$', got ' '");
}

Test(multibulk_errors, expected_dollar_waits_for_the_line)
{
    /* Redis only looks at the first byte once the whole line is there */
    resp_req_parser p;
    resp_req_init(&p);
    cr_assert_eq(resp_req_parse(&p, "*1\r\nx", 5), RESP_AGAIN);
    cr_assert_eq(resp_req_parse(&p, "*1\r\nxyz\r", 8), RESP_AGAIN);
    cr_assert_eq(resp_req_parse(&p, "*1\r\nxyz\r\n", 9), RESP_ERR);
    cr_assert_str_eq(p.err, "Protocol error: expected '$', got 'x'");
    resp_req_free(&p);
}

Test(multibulk_errors, invalid_bulk_length)
{
    const char *e = "Protocol error: invalid bulk length";
    expect_err(B("*1\r\n$-1\r\n"), e);
    expect_err(B("*1\r\n$-5\r\n"), e);
    expect_err(B("*1\r\n$abc\r\n"), e);
    expect_err(B("*1\r\n$+4\r\nPING\r\n"), e);
    expect_err(B("*1\r\n$04\r\nPING\r\n"), e);
    expect_err(B("*1\r\n$\r\n"), e);
    expect_err(B("*1\r\n$4 \r\n"), e);
    expect_err(B("*1\r\n$99999999999999999999\r\n"), e);
    expect_err(B("*2\r\n$1\r\na\r\n$x\r\n"), e);
    expect_err(B("*1\r\n$536870913\r\n"), e); /* 512 MB + 1 */
}

Test(multibulk_errors, bulk_length_limit)
{
    limits l = DEFAULTS;
    l.max_bulk_len = 10;
    bytes argv[] = { B("0123456789") };
    expect_ok_l(&l, B("*1\r\n$10\r\n0123456789\r\n"), 21, 1, argv);
    expect_err_l(&l, B("*1\r\n$11\r\n"), "Protocol error: invalid bulk length");

    /* default: 512 MB exactly is accepted (waits for the payload) */
    resp_req_parser p;
    resp_req_init(&p);
    cr_assert_eq(resp_req_parse(&p, "*1\r\n$536870912\r\n", 17), RESP_AGAIN);
    resp_req_free(&p);
}

Test(multibulk_errors, unauthenticated_bulk_length)
{
    static const char head[] = "*2\r\n$3\r\nSET\r\n$16384\r\n";
    bytes big = make_filled(head, 16384, 'v', "\r\n");
    bytes argv[] = { B("SET"), { big.p + sizeof(head) - 1, 16384 } };
    expect_ok_l(&UNAUTH, big, big.n, 2, argv);
    free((void *)big.p);
    expect_err_l(&UNAUTH, B("*1\r\n$16385\r\n"), "Protocol error: unauthenticated bulk length");
    expect_err_l(&UNAUTH, B("*1\r\n$100000000\r\n"), "Protocol error: unauthenticated bulk length");
    /* invalid beats unauthenticated */
    expect_err_l(&UNAUTH, B("*1\r\n$-1\r\n"), "Protocol error: invalid bulk length");
}

Test(multibulk_errors, too_big_mbulk_count_string)
{
    /* the '\r' may be at offset 65536 at most: then the count is parsed */
    bytes at = make_filled("*", 65535, '1', "\r\n");
    expect_err(at, "Protocol error: invalid multibulk length");
    free((void *)at.p);
    /* 65537 bytes and no '\r' yet: too big */
    bytes past = make_filled("*", 65536, '1', "");
    expect_err(past, "Protocol error: too big mbulk count string");
    free((void *)past.p);
    bytes past2 = make_filled("*", 65536, '1', "\r\n");
    expect_err(past2, "Protocol error: too big mbulk count string");
    free((void *)past2.p);
}

Test(multibulk_errors, too_big_bulk_count_string)
{
    bytes at = make_filled("*1\r\n$", 65535, '1', "\r\n");
    expect_err(at, "Protocol error: invalid bulk length");
    free((void *)at.p);
    bytes past = make_filled("*1\r\n$", 65536, '1', "");
    expect_err(past, "Protocol error: too big bulk count string");
    free((void *)past.p);
    /* the window counts from the start of the '$' line, not of the request */
    bytes past2 = make_filled("*2\r\n$1\r\na\r\nx", 65536, 'y', "");
    expect_err(past2, "Protocol error: too big bulk count string");
    free((void *)past2.p);
}

/* ---- inline --------------------------------------------------------------- */

Test(inline_req, simple)
{
    bytes argv[] = { B("SET"), B("a"), B("b") };
    expect_ok(B("SET a b\r\n"), 9, 3, argv);
    expect_ok(B("SET a b\n"), 8, 3, argv);
    expect_ok(B("  SET   a\tb  \r\n"), 15, 3, argv);
    bytes ping[] = { B("PING") };
    expect_ok(B("PING\r\nPING\r\n"), 6, 1, ping);
}

Test(inline_req, is_inline_and_scratch)
{
    resp_req_parser p;
    resp_req_init(&p);
    cr_assert_eq(resp_req_parse(&p, "ECHO \"a b\"\r\n", 12), RESP_OK);
    cr_assert_eq(p.is_inline, 1);
    cr_assert_eq(p.argc, 2);
    cr_assert_not_null(p.inline_buf);
    cr_assert(memcmp(p.inline_buf + p.argv[1].off, "a b", 3) == 0);
    cr_assert_eq(p.argv[1].len, 3);
    resp_req_free(&p);
}

Test(inline_req, empty_lines_are_skipped)
{
    expect_ok(B("\r\n"), 2, 0, NULL);
    expect_ok(B("\n"), 1, 0, NULL);
    expect_ok(B("   \r\n"), 5, 0, NULL);
    expect_ok(B(" \t\v\f\r\r\n"), 7, 0, NULL);
    expect_ok(B("\r\nPING\r\n"), 2, 0, NULL);
}

Test(inline_req, only_one_cr_is_stripped)
{
    /* "a\r" remains; '\r' separates arguments */
    bytes argv[] = { B("a") };
    expect_ok(B("a\r\r\n"), 4, 1, argv);
    bytes argv2[] = { B("a"), B("b") };
    expect_ok(B("a\rb\r\n"), 5, 2, argv2);
}

/* All of these were checked against redis-server 7.0.15. */
Test(inline_req, quoting_like_redis)
{
    bytes a1[] = { B("RPUSH"), B("aAx4"), B("b") };
    EXPECT_ONE("RPUSH \"a\\x41\\x4\" b\r\n", a1);

    bytes a2[] = { B("a\n\r\t\b\a\\\"q") };
    EXPECT_ONE("\"a\\n\\r\\t\\b\\a\\\\\\\"\\q\"\r\n", a2);

    bytes a3[] = { B("a'b\\n") };
    EXPECT_ONE("'a\\'b\\n'\r\n", a3);

    bytes a4[] = { B("foobar baz") };
    EXPECT_ONE("foo\"bar baz\"\r\n", a4);

    bytes a5[] = { B(""), B("") };
    EXPECT_ONE("\"\" ''\r\n", a5);

    /* \v and \f skip between arguments but do not end an unquoted one */
    bytes a6[] = { B("a"), B("b\v") };
    EXPECT_ONE("  a\t\vb\v \r\n", a6);

    /* a closing quote may be followed by any blank */
    bytes a7[] = { B("a"), B("b") };
    EXPECT_ONE("\"a\"\vb\r\n", a7);
    bytes a8[] = { B("x"), B("y") };
    EXPECT_ONE("'x'\f'y'\r\n", a8);

    bytes a9[] = { B("x4g") };
    EXPECT_ONE("\"\\x4g\"\r\n", a9);

    bytes a10[] = { B("ab") };
    EXPECT_ONE("a\"b\"\r\n", a10);

    bytes a11[] = { B("\xff\x00Z") };
    EXPECT_ONE("\"\\xfF\\x00\\x5a\"\n", a11);

    /* single quotes keep backslashes, double quotes inside are plain */
    bytes a12[] = { B("a\\x41\"") };
    EXPECT_ONE("'a\\x41\"'\n", a12);
}

Test(inline_req, nul_is_an_ordinary_byte)
{
    /* documented choice: Redis never executes such a line (strchr stops at
     * the NUL); we are binary-safe instead */
    bytes argv[] = { B("ECHO"), B("a\0b") };
    expect_ok(B("ECHO a\0b\r\n"), 10, 2, argv);
}

Test(inline_req, unbalanced_quotes)
{
    const char *e = "Protocol error: unbalanced quotes in request";
    expect_err(B("\"abc\r\n"), e);
    expect_err(B("\"abc\"def\r\n"), e);
    expect_err(B("'abc\r\n"), e);
    expect_err(B("'abc'def\r\n"), e);
    expect_err(B("x\"a\\\"\r\n"), e);
    expect_err(B("\"abc\\\r\n"), e);
    expect_err(B("\"a\"\"b\"\r\n"), e);
    expect_err(B("SET \"a\" \"b\r\n"), e);
    expect_err(B("'it\\'\n"), e);
}

Test(inline_req, inline_length_limit)
{
    /* 65536 bytes before the '\n' is accepted ... */
    bytes at = make_filled("", 65536, 'a', "\n");
    bytes argv[] = { { at.p, 65536 } };
    expect_ok(at, at.n, 1, argv);
    free((void *)at.p);
    bytes at_cr = make_filled("", 65535, 'a', "\r\n");
    bytes argv2[] = { { at_cr.p, 65535 } };
    expect_ok(at_cr, at_cr.n, 1, argv2);
    free((void *)at_cr.p);
    /* ... one more is not, whether or not the '\n' follows */
    bytes past = make_filled("", 65537, 'a', "\n");
    expect_err(past, "Protocol error: too big inline request");
    free((void *)past.p);
    bytes past2 = make_filled("", 65537, 'a', "");
    expect_err(past2, "Protocol error: too big inline request");
    free((void *)past2.p);
}

/* ---- pipelines, buffers, memory ------------------------------------------- */

Test(pipeline, mixed_requests_in_one_buffer)
{
    static const char in[] =
        "*1\r\n$4\r\nPING\r\n"
        "\r\n"
        "SET k \"v 1\"\r\n"
        "*0\r\n"
        "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
        "QUIT\n";
    const size_t n = sizeof(in) - 1;
    const size_t want_argc[] = { 1, 0, 3, 0, 2, 1 };
    const size_t want_len[] = { 14, 2, 13, 4, 20, 5 };
    const int want_inline[] = { 0, 1, 1, 0, 0, 1 };
    const char *want_first[] = { "PING", NULL, "SET", NULL, "GET", "QUIT" };

    /* whole buffer, then byte by byte (moving copies) through one parser */
    for (int mode = 0; mode < 2; mode++) {
        resp_req_parser p;
        size_t start = 0, got = 0, avail = mode ? 0 : n;
        resp_req_init(&p);
        while (start < n) {
            int rc = parse_moved(&p, in + start, avail - start);
            if (rc == RESP_AGAIN) {
                cr_assert(avail < n, "AGAIN with the whole buffer");
                avail++;
                continue;
            }
            cr_assert_eq(rc, RESP_OK, "rc %d err %s", rc, p.err);
            cr_assert(got < 6);
            cr_assert_eq(p.argc, want_argc[got], "request %zu", got);
            cr_assert_eq(p.req_len, want_len[got], "request %zu", got);
            cr_assert_eq(p.is_inline, want_inline[got], "request %zu", got);
            if (want_first[got]) {
                size_t l;
                const char *a = resp_req_arg(&p, in + start, 0, &l);
                cr_assert_eq(l, strlen(want_first[got]));
                cr_assert(memcmp(a, want_first[got], l) == 0);
            }
            if (got == 2) {
                size_t l;
                const char *a = resp_req_arg(&p, in + start, 2, &l);
                cr_assert_eq(l, 3);
                cr_assert(memcmp(a, "v 1", 3) == 0);
            }
            start += p.req_len;
            got++;
        }
        cr_assert_eq(got, 6);
        resp_req_free(&p);
    }
}

Test(pipeline, argv_is_reused_without_allocation)
{
    resp_req_parser p;
    static const char req[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n";
    resp_arg *first;
    resp_req_init(&p);
    cr_assert_null(p.argv, "init must not allocate");
    cr_assert_eq(resp_req_parse(&p, req, sizeof(req) - 1), RESP_OK);
    first = p.argv;
    cr_assert_not_null(first);
    for (int i = 0; i < 1000; i++) {
        cr_assert_eq(resp_req_parse(&p, req, sizeof(req) - 1), RESP_OK);
        cr_assert_eq(p.argv, first);
        cr_assert_eq(p.argc, 3);
    }
    resp_req_free(&p);
}

Test(memory, huge_declared_count_allocates_by_what_arrived)
{
    resp_req_parser p;
    static const char req[] = "*2000000000\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n";
    resp_req_init(&p);
    cr_assert_eq(resp_req_parse(&p, req, sizeof(req) - 1), RESP_AGAIN);
    cr_assert_eq(p.argc, 3);
    cr_assert_leq(p.argv_cap, 8, "argv_cap %zu", p.argv_cap);
    resp_req_free(&p);
}

Test(memory, one_million_arguments_in_chunks, .timeout = 60)
{
    const size_t nargs = 1000000;
    size_t cap = 32 + nargs * 7, n = 0, avail = 0;
    char *buf = malloc(cap);
    resp_req_parser p;
    int rc = RESP_AGAIN;
    size_t calls = 0;

    cr_assert_not_null(buf);
    n += (size_t)sprintf(buf, "*%zu\r\n", nargs);
    for (size_t i = 0; i < nargs; i++) {
        memcpy(buf + n, "$1\r\nx\r\n", 7);
        buf[n + 4] = (char)('a' + i % 26);
        n += 7;
    }
    resp_req_init(&p);
    /* 4 KiB per call: about 1700 calls; a parser that restarted from the
     * beginning each time would do ~6 GB of work and time out */
    while (rc == RESP_AGAIN) {
        avail = avail + 4096 < n ? avail + 4096 : n;
        rc = resp_req_parse(&p, buf, avail);
        calls++;
        if (rc == RESP_AGAIN) cr_assert_lt(avail, n);
    }
    cr_assert_eq(rc, RESP_OK, "err %s", p.err);
    cr_assert_eq(avail, n);
    cr_assert_eq(p.req_len, n);
    cr_assert_eq(p.argc, nargs);
    cr_assert_leq(p.argv_cap, 2 * nargs);
    for (size_t i = 0; i < nargs; i += 99991) {
        size_t l;
        const char *a = resp_req_arg(&p, buf, i, &l);
        cr_assert_eq(l, 1);
        cr_assert_eq(*a, (char)('a' + i % 26));
    }
    cr_assert_gt(calls, 1000);
    resp_req_free(&p);
    free(buf);
}

Test(memory, ten_megabyte_bulk_in_4k_chunks_moving_buffer, .timeout = 60)
{
    const size_t blen = 10 * 1024 * 1024;
    static const char head[] = "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$10485760\r\n";
    size_t hl = sizeof(head) - 1, n = hl + blen + 2, avail = 0;
    char *src = malloc(n);
    char *buf = NULL;
    resp_req_parser p;
    int rc = RESP_AGAIN;

    cr_assert_not_null(src);
    memcpy(src, head, hl);
    for (size_t i = 0; i < blen; i++) src[hl + i] = (char)(i * 31 + 7);
    memcpy(src + hl + blen, "\r\n", 2);
    resp_req_init(&p);
    while (rc == RESP_AGAIN) {
        /* the connection's buffer grows: realloc moves it now and then */
        size_t prev = avail;
        avail = avail + 4096 < n ? avail + 4096 : n;
        buf = realloc(buf, avail);
        cr_assert_not_null(buf);
        memcpy(buf + prev, src + prev, avail - prev);
        rc = resp_req_parse(&p, buf, avail);
        if (rc == RESP_AGAIN) cr_assert_lt(avail, n);
    }
    cr_assert_eq(rc, RESP_OK, "err %s", p.err);
    cr_assert_eq(p.req_len, n);
    cr_assert_eq(p.argc, 3);
    size_t l;
    const char *a = resp_req_arg(&p, buf, 2, &l);
    cr_assert_eq(l, blen);
    cr_assert_eq(p.argv[2].off, hl);
    cr_assert(memcmp(a, src + hl, blen) == 0);
    a = resp_req_arg(&p, buf, 1, &l);
    cr_assert_eq(l, 3);
    cr_assert(memcmp(a, "big", 3) == 0);
    resp_req_free(&p);
    free(buf);
    free(src);
}

Test(memory, shrink_frees_large_scratch)
{
    resp_req_parser p;
    size_t n = 0;
    char *buf = malloc(16 + 2000 * 7);
    cr_assert_not_null(buf);
    n += (size_t)sprintf(buf, "*2000\r\n");
    for (int i = 0; i < 2000; i++) {
        memcpy(buf + n, "$1\r\nx\r\n", 7);
        n += 7;
    }
    resp_req_init(&p);
    cr_assert_eq(resp_req_parse(&p, buf, n), RESP_OK);
    cr_assert_gt(p.argv_cap, 1024);
    resp_req_shrink(&p);
    cr_assert_null(p.argv);
    cr_assert_eq(p.argv_cap, 0);
    cr_assert_eq(p.argc, 0);
    /* still usable */
    cr_assert_eq(resp_req_parse(&p, "*1\r\n$4\r\nPING\r\n", 14), RESP_OK);
    cr_assert_eq(p.argc, 1);
    resp_arg *small = p.argv;
    resp_req_shrink(&p); /* small: kept */
    cr_assert_eq(p.argv, small);

    /* a big inline line grows inline_buf beyond the threshold */
    bytes line = make_filled("ECHO ", 40000, 'z', "\r\n");
    cr_assert_eq(resp_req_parse(&p, line.p, line.n), RESP_OK);
    cr_assert_eq(p.argc, 2);
    cr_assert_geq(p.inline_cap, 40000);
    resp_req_shrink(&p);
    cr_assert_null(p.inline_buf);
    cr_assert_eq(p.inline_cap, 0);
    cr_assert_eq(resp_req_parse(&p, "PING x\n", 7), RESP_OK);
    cr_assert_eq(p.argc, 2);
    free((void *)line.p);
    free(buf);
    resp_req_free(&p);
}

Test(memory, shrink_keeps_a_request_in_progress)
{
    resp_req_parser p;
    size_t n = 0;
    char *buf = malloc(16 + 2000 * 7);
    cr_assert_not_null(buf);
    n += (size_t)sprintf(buf, "*2001\r\n");
    for (int i = 0; i < 2000; i++) {
        memcpy(buf + n, "$1\r\nx\r\n", 7);
        n += 7;
    }
    resp_req_init(&p);
    cr_assert_eq(resp_req_parse(&p, buf, n), RESP_AGAIN);
    resp_req_shrink(&p);
    cr_assert_not_null(p.argv);
    buf = realloc(buf, n + 7);
    memcpy(buf + n, "$1\r\ny\r\n", 7);
    cr_assert_eq(resp_req_parse(&p, buf, n + 7), RESP_OK);
    cr_assert_eq(p.argc, 2001);
    size_t l;
    cr_assert_eq(*resp_req_arg(&p, buf, 2000, &l), 'y');
    cr_assert_eq(*resp_req_arg(&p, buf, 0, &l), 'x');
    free(buf);
    resp_req_free(&p);
}

Test(api, reset_clears_error_and_partial_state)
{
    resp_req_parser p;
    resp_req_init(&p);
    p.max_bulk_len = 100;
    cr_assert_eq(resp_req_parse(&p, "*1\r\n$x\r\n", 8), RESP_ERR);
    cr_assert_str_eq(p.err, "Protocol error: invalid bulk length");
    cr_assert_eq(resp_req_parse(&p, "PING\r\n", 6), RESP_ERR);
    resp_req_reset(&p);
    cr_assert_str_eq(p.err, "");
    cr_assert_eq(p.max_bulk_len, 100, "reset keeps the limits");
    cr_assert_eq(resp_req_parse(&p, "*2\r\n$3\r\nGET\r\n", 13), RESP_AGAIN);
    resp_req_reset(&p); /* drop the partial request */
    cr_assert_eq(resp_req_parse(&p, "PING\r\n", 6), RESP_OK);
    cr_assert_eq(p.argc, 1);
    cr_assert_eq(p.req_len, 6);
    resp_req_free(&p);
    /* re-init after free works */
    resp_req_init(&p);
    cr_assert_eq(resp_req_parse(&p, "PING\n", 5), RESP_OK);
    resp_req_free(&p);
}

Test(api, limits_may_change_between_requests)
{
    resp_req_parser p;
    resp_req_init(&p);
    p.unauthenticated = 1;
    cr_assert_eq(resp_req_parse(&p, "*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n", 22), RESP_OK);
    p.unauthenticated = 0; /* AUTH succeeded */
    cr_assert_eq(resp_req_parse(&p, "*11\r\n", 5), RESP_AGAIN);
    resp_req_free(&p);
}

Test(api, empty_buffer_is_again)
{
    resp_req_parser p;
    resp_req_init(&p);
    cr_assert_eq(resp_req_parse(&p, "", 0), RESP_AGAIN);
    cr_assert_eq(resp_req_parse(&p, "\n", 1), RESP_OK);
    cr_assert_eq(p.argc, 0);
    resp_req_free(&p);
}

Test(api, shorter_buffer_than_parsed_is_an_error_not_a_crash)
{
    resp_req_parser p;
    resp_req_init(&p);
    cr_assert_eq(resp_req_parse(&p, "*2\r\n$3\r\nGET\r\n", 13), RESP_AGAIN);
    cr_assert_eq(resp_req_parse(&p, "*2\r\n", 4), RESP_ERR);
    cr_assert_neq(p.err[0], '\0');
    resp_req_free(&p);
}

/* ---- fuzz ------------------------------------------------------------------ */

static uint64_t rng_state;
static uint32_t rnd(void)
{
    /* xorshift64*: deterministic across runs */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}

/* Build a random input: either pure noise from a RESP-heavy alphabet, or a
 * valid request (multibulk or inline) with a few bytes mutated. */
static size_t random_input(char *buf, size_t cap)
{
    static const char alpha[] = "*$\r\n\r\n0123456789-+ \"'\\xaA\t\0zZ";
    size_t n = 0;
    if (rnd() % 3 == 0) {
        n = rnd() % 48;
        for (size_t i = 0; i < n; i++) buf[i] = alpha[rnd() % (sizeof(alpha) - 1)];
        return n;
    }
    if (rnd() % 2) {
        int argc = (int)(rnd() % 4);
        n += (size_t)snprintf(buf + n, cap - n, "*%d\r\n", argc);
        for (int i = 0; i < argc; i++) {
            int l = (int)(rnd() % 6);
            n += (size_t)snprintf(buf + n, cap - n, "$%d\r\n", l);
            for (int j = 0; j < l; j++) buf[n++] = alpha[rnd() % (sizeof(alpha) - 1)];
            buf[n++] = '\r';
            buf[n++] = '\n';
        }
    } else {
        size_t l = rnd() % 24;
        for (size_t i = 0; i < l; i++) buf[n++] = alpha[rnd() % (sizeof(alpha) - 1)];
        buf[n++] = '\n';
    }
    for (int m = (int)(rnd() % 3); m > 0 && n > 0; m--) {
        size_t at = rnd() % n;
        switch (rnd() % 3) {
        case 0: buf[at] = alpha[rnd() % (sizeof(alpha) - 1)]; break;
        case 1: memmove(buf + at, buf + at + 1, n - at - 1); n--; break;
        default:
            if (n < cap) {
                memmove(buf + at + 1, buf + at, n - at);
                buf[at] = (char)rnd();
                n++;
            }
        }
    }
    return n;
}

typedef struct {
    int rc;
    size_t req_len, argc;
    char err[RESP_ERR_MAX];
    char args[256];
    size_t args_len;
} outcome;

/* Record what one parse produced, argument bytes included. */
static void record(outcome *o, const resp_req_parser *p, const char *buf, int rc)
{
    memset(o, 0, sizeof(*o));
    o->rc = rc;
    if (rc == RESP_ERR) memcpy(o->err, p->err, sizeof(o->err));
    if (rc != RESP_OK) return;
    o->req_len = p->req_len;
    o->argc = p->argc;
    for (size_t i = 0; i < p->argc; i++) {
        size_t l;
        const char *a = resp_req_arg(p, buf, i, &l);
        cr_assert_leq(l + 1 + o->args_len, sizeof(o->args));
        memcpy(o->args + o->args_len, a, l);
        o->args_len += l;
        o->args[o->args_len++] = '|';
    }
}

Test(fuzz, whole_equals_byte_by_byte_on_100k_inputs, .timeout = 300)
{
    char buf[512];
    size_t oks = 0, errs = 0, agains = 0;
    rng_state = 0x9e3779b97f4a7c15ULL;
    for (int iter = 0; iter < 100000; iter++) {
        size_t n = random_input(buf, sizeof(buf));
        limits l = DEFAULTS;
        resp_req_parser p;
        outcome whole, grown;
        int rc = RESP_AGAIN;

        if (rnd() % 4 == 0) l.unauthenticated = 1;
        if (rnd() % 4 == 0) l.max_bulk_len = rnd() % 6;
        if (rnd() % 4 == 0) l.max_multibulk_len = rnd() % 4;

        init_with(&p, &l);
        rc = parse_moved(&p, buf, n);
        record(&whole, &p, buf, rc);
        resp_req_free(&p);

        init_with(&p, &l);
        for (size_t k = 0; k <= n; k++) {
            rc = parse_moved(&p, buf, k);
            if (rc != RESP_AGAIN) break;
        }
        record(&grown, &p, buf, rc);
        resp_req_free(&p);

        cr_assert_eq(whole.rc, grown.rc, "iter %d: rc %d vs %d", iter, whole.rc, grown.rc);
        cr_assert_str_eq(whole.err, grown.err, "iter %d", iter);
        cr_assert_eq(whole.req_len, grown.req_len, "iter %d", iter);
        cr_assert_leq(whole.req_len, n);
        cr_assert_eq(whole.argc, grown.argc, "iter %d", iter);
        cr_assert_eq(whole.args_len, grown.args_len, "iter %d", iter);
        cr_assert(memcmp(whole.args, grown.args, whole.args_len) == 0, "iter %d", iter);
        if (whole.rc == RESP_ERR)
            cr_assert(strncmp(whole.err, "Protocol error: ", 16) == 0, "iter %d: %s", iter, whole.err);
        oks += whole.rc == RESP_OK;
        errs += whole.rc == RESP_ERR;
        agains += whole.rc == RESP_AGAIN;
    }
    /* the generator must exercise all three outcomes */
    cr_assert_gt(oks, 10000);
    cr_assert_gt(errs, 10000);
    cr_assert_gt(agains, 1000);
}
