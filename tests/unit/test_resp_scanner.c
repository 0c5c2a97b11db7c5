/* test_resp_scanner.c -- unit tests of the RESP2/RESP3 reply boundary scanner.
 *
 * Every valid reply goes through expect_reply(): scanned whole, split at
 * every byte (prefix, then the whole) and growing one byte at a time through
 * one scanner, each call on a fresh exact-size copy of the bytes (the buffer
 * moves between calls; ASan catches reads past len). */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp/resp_scanner.h"

typedef struct {
    const char *p;
    size_t n;
} bytes;

#define B(lit) ((bytes){ (lit), sizeof(lit) - 1 })

/* Scan buf[0..n) from a fresh copy of exactly n bytes. */
static int scan_moved(resp_scanner *s, const char *buf, size_t n, size_t *reply_len)
{
    char *copy = malloc(n ? n : 1);
    int rc;
    cr_assert_not_null(copy);
    if (n) memcpy(copy, buf, n);
    rc = resp_scan(s, copy, n, reply_len);
    free(copy);
    return rc;
}

static void init_with(resp_scanner *s, const resp_scanner *tmpl)
{
    resp_scanner_init(s);
    if (tmpl) {
        s->max_bulk_len = tmpl->max_bulk_len;
        s->max_depth = tmpl->max_depth;
    }
}

/* in starts with one valid reply of reply_len bytes whose outermost value
 * has this type and top_len.  tmpl (may be NULL) supplies the limits. */
static void expect_reply_l(const resp_scanner *tmpl, bytes in, size_t reply_len, char type,
                           long long top_len)
{
    resp_scanner s;
    int copy = in.n <= 4096;
    size_t got = 0;
    int rc;

    cr_assert(reply_len <= in.n);
    init_with(&s, tmpl);
    for (int round = 0; round < 3; round++) { /* no reset needed between replies */
        got = 0;
        rc = scan_moved(&s, in.p, in.n, &got);
        cr_assert_eq(rc, RESP_OK, "round %d: rc %d err '%s'", round, rc, s.err);
        cr_assert_eq(got, reply_len, "reply_len %zu, expected %zu", got, reply_len);
        cr_assert_eq(s.type, type, "type '%c', expected '%c'", s.type, type);
        cr_assert_eq(s.top_len, top_len, "top_len %lld, expected %lld", s.top_len, top_len);
    }

    for (size_t k = 0; k <= in.n; k += (copy ? 1 : 1 + in.n / 97)) {
        init_with(&s, tmpl);
        got = 0;
        rc = copy ? scan_moved(&s, in.p, k, &got) : resp_scan(&s, in.p, k, &got);
        if (k < reply_len) {
            cr_assert_eq(rc, RESP_AGAIN, "split %zu/%zu: rc %d err '%s'", k, in.n, rc, s.err);
            rc = copy ? scan_moved(&s, in.p, in.n, &got) : resp_scan(&s, in.p, in.n, &got);
        }
        cr_assert_eq(rc, RESP_OK, "split %zu: rc %d err '%s'", k, rc, s.err);
        cr_assert_eq(got, reply_len, "split %zu", k);
        cr_assert_eq(s.type, type, "split %zu", k);
        cr_assert_eq(s.top_len, top_len, "split %zu", k);
    }

    init_with(&s, tmpl);
    for (size_t k = 0; k <= reply_len; k++) {
        got = 0;
        rc = copy ? scan_moved(&s, in.p, k, &got) : resp_scan(&s, in.p, k, &got);
        if (k < reply_len)
            cr_assert_eq(rc, RESP_AGAIN, "grow %zu/%zu: rc %d err '%s'", k, reply_len, rc, s.err);
    }
    cr_assert_eq(rc, RESP_OK, "grow: rc %d err '%s'", rc, s.err);
    cr_assert_eq(got, reply_len);
    cr_assert_eq(s.type, type);
    cr_assert_eq(s.top_len, top_len);
}

/* The whole literal is one reply. */
#define ONE(lit, type, top_len) expect_reply_l(NULL, B(lit), sizeof(lit) - 1, (type), (top_len))

/* The input is invalid and the error message contains `needle`, however it
 * is split; the error is sticky. */
static void expect_err_l(const resp_scanner *tmpl, bytes in, const char *needle)
{
    resp_scanner s;
    int copy = in.n <= 4096;
    size_t got = 0, step = copy ? 1 : 1 + in.n / 97;
    int rc, seen = 0;
    char first[RESP_ERR_MAX];

    init_with(&s, tmpl);
    rc = scan_moved(&s, in.p, in.n, &got);
    cr_assert_eq(rc, RESP_ERR, "rc %d, expected an error containing '%s'", rc, needle);
    cr_assert(strstr(s.err, needle) != NULL, "err '%s' lacks '%s'", s.err, needle);
    memcpy(first, s.err, sizeof(first));
    cr_assert_eq(scan_moved(&s, in.p, in.n, &got), RESP_ERR, "error is not sticky");
    cr_assert_str_eq(s.err, first);

    for (size_t k = 0; k <= in.n; k += step) {
        init_with(&s, tmpl);
        rc = copy ? scan_moved(&s, in.p, k, &got) : resp_scan(&s, in.p, k, &got);
        if (rc != RESP_ERR) {
            cr_assert_eq(rc, RESP_AGAIN, "split %zu: rc %d", k, rc);
            rc = copy ? scan_moved(&s, in.p, in.n, &got) : resp_scan(&s, in.p, in.n, &got);
        }
        cr_assert_eq(rc, RESP_ERR, "split %zu: rc %d", k, rc);
        cr_assert_str_eq(s.err, first, "split %zu", k);
    }

    init_with(&s, tmpl);
    for (size_t k = 0; k <= in.n; k++) {
        rc = copy ? scan_moved(&s, in.p, k, &got) : resp_scan(&s, in.p, k, &got);
        if (seen || rc == RESP_ERR) {
            cr_assert_eq(rc, RESP_ERR, "grow %zu: not sticky", k);
            cr_assert_str_eq(s.err, first, "grow %zu", k);
            seen = 1;
        } else {
            cr_assert_eq(rc, RESP_AGAIN, "grow %zu: rc %d", k, rc);
        }
    }
    cr_assert(seen);
}

#define ERR(lit, needle) expect_err_l(NULL, B(lit), (needle))

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

/* ---- single-line types ---------------------------------------------------- */

Test(lines, every_line_type)
{
    ONE("+OK\r\n", '+', 0);
    ONE("-ERR unknown command\r\n", '-', 0);
    ONE(":12345\r\n", ':', 0);
    ONE(":-1\r\n", ':', 0);
    ONE("_\r\n", '_', 0);
    ONE(",3.14\r\n", ',', 0);
    ONE(",inf\r\n", ',', 0);
    ONE("#t\r\n", '#', 0);
    ONE("(3492890328409238509324850943850943825024385\r\n", '(', 0);
    ONE("+\r\n", '+', 0);
}

Test(lines, lone_cr_is_content)
{
    ONE("+a\rb\r\n", '+', 0);
    ONE("-\r\r\r\n", '-', 0);
    ONE("+a\nb\r\n", '+', 0);
}

Test(lines, trailing_data_is_not_consumed)
{
    expect_reply_l(NULL, B("+OK\r\n+OK\r\n"), 5, '+', 0);
    expect_reply_l(NULL, B(":1\r\n$3\r\nab"), 4, ':', 0);
}

Test(lines, line_length_limit)
{
    /* a line of 65536 bytes (type byte included) plus CRLF is accepted */
    bytes at = make_filled("+", 65535, 'x', "\r\n");
    expect_reply_l(NULL, at, at.n, '+', 0);
    free((void *)at.p);
    bytes past = make_filled("+", 65536, 'x', "\r\n");
    expect_err_l(NULL, past, "too big reply line");
    free((void *)past.p);
    bytes past2 = make_filled("-", 65536, 'x', "");
    expect_err_l(NULL, past2, "too big reply line");
    free((void *)past2.p);
    /* a '\r' at the edge of the window that is not followed by '\n' */
    bytes edge = make_filled("+", 65535, 'x', "\rx\r\n");
    expect_err_l(NULL, edge, "too big reply line");
    free((void *)edge.p);
    /* the window counts from each element's start */
    bytes nested = make_filled("*2\r\n+aaaa\r\n+", 65535, 'x', "\r\n");
    expect_reply_l(NULL, nested, nested.n, '*', 2);
    free((void *)nested.p);
}

/* ---- blobs ---------------------------------------------------------------- */

Test(blobs, bulk_strings)
{
    ONE("$5\r\nhello\r\n", '$', 5);
    ONE("$0\r\n\r\n", '$', 0);
    ONE("$-1\r\n", '$', -1);
    ONE("$6\r\n\r\n\r\n\r\n\r\n", '$', 6); /* payload made of CRLFs */
    ONE("$3\r\n\0\0\0\r\n", '$', 3);
    ONE("$2\r\n$2\r\n", '$', 2);
}

Test(blobs, resp3_blob_types)
{
    ONE("!21\r\nSYNTAX invalid syntax\r\n", '!', 21);
    ONE("=15\r\ntxt:Some string\r\n", '=', 15);
    ONE("=-1\r\n", '=', -1);
}

Test(blobs, bulk_length_limit)
{
    resp_scanner lim;
    resp_scanner_init(&lim);
    lim.max_bulk_len = 10;
    expect_reply_l(&lim, B("$10\r\n0123456789\r\n"), 17, '$', 10);
    expect_err_l(&lim, B("$11\r\n"), "exceeds the limit");
    expect_err_l(&lim, B("*2\r\n:1\r\n!11\r\n"), "exceeds the limit");
    /* default: 512 MB accepted, one more refused */
    resp_scanner s;
    size_t n;
    resp_scanner_init(&s);
    cr_assert_eq(resp_scan(&s, "$536870912\r\n", 12, &n), RESP_AGAIN);
    resp_scanner_init(&s);
    cr_assert_eq(resp_scan(&s, "$536870913\r\n", 12, &n), RESP_ERR);
}

Test(blobs, payload_must_end_with_crlf)
{
    ERR("$3\r\nabcXY", "not followed by CRLF");
    ERR("$3\r\nabc\rX", "not followed by CRLF");
    ERR("$3\r\nabcd\r\n", "not followed by CRLF");
    ERR("*1\r\n$1\r\nab\r\n", "not followed by CRLF");
}

Test(blobs, invalid_lengths)
{
    ERR("$abc\r\n", "invalid bulk length");
    ERR("$-2\r\n", "invalid bulk length");
    ERR("$\r\n", "invalid bulk length");
    ERR("$+1\r\nx\r\n", "invalid bulk length");
    ERR("$01\r\nx\r\n", "invalid bulk length");
    ERR("$-0\r\n", "invalid bulk length");
    ERR("$1 \r\nx\r\n", "invalid bulk length");
    ERR("$99999999999999999999\r\n", "invalid bulk length");
    ERR("!x\r\n", "invalid bulk length");
    ERR("=\r\n", "invalid bulk length");
}

/* ---- aggregates ----------------------------------------------------------- */

Test(aggregates, arrays)
{
    ONE("*2\r\n$3\r\nfoo\r\n:1\r\n", '*', 2);
    ONE("*0\r\n", '*', 0);
    ONE("*-1\r\n", '*', -1);
    ONE("*3\r\n$-1\r\n*-1\r\n*0\r\n", '*', 3);
    ONE("*2\r\n*2\r\n+a\r\n+b\r\n*1\r\n*1\r\n:5\r\n", '*', 2);
    ONE("*1\r\n-ERR inside\r\n", '*', 1);
}

Test(aggregates, resp3_aggregates)
{
    ONE("%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n", '%', 2);
    ONE("%0\r\n", '%', 0);
    ONE("%1\r\n*2\r\n:1\r\n:2\r\n%1\r\n+k\r\n+v\r\n", '%', 1);
    ONE("~3\r\n+a\r\n+b\r\n+c\r\n", '~', 3);
    ONE(">3\r\n+message\r\n+chan\r\n$5\r\nhello\r\n", '>', 3);
    ONE(">4\r\n+pmessage\r\n+p*\r\n+chan\r\n$2\r\nhi\r\n", '>', 4);
    ONE("*3\r\n_\r\n#f\r\n,1e10\r\n", '*', 3);
    ONE("~2\r\n%1\r\n:1\r\n~0\r\n=3\r\ntxt\r\n", '~', 2);
}

Test(aggregates, hello_reply)
{
    static const char r[] =
        "%7\r\n"
        "$6\r\nserver\r\n$5\r\nredis\r\n"
        "$7\r\nversion\r\n$6\r\n7.0.15\r\n"
        "$5\r\nproto\r\n:3\r\n"
        "$2\r\nid\r\n:5\r\n"
        "$4\r\nmode\r\n$10\r\nstandalone\r\n"
        "$4\r\nrole\r\n$6\r\nmaster\r\n"
        "$7\r\nmodules\r\n*0\r\n";
    ONE(r, '%', 7);
}

Test(aggregates, attributes)
{
    /* at top level: the value after it is the reply, and gives the type */
    ONE("|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.19\r\n$1\r\nb\r\n,0.05\r\n"
        "*2\r\n:2039123\r\n:9543892\r\n",
        '*', 2);
    ONE("|1\r\n+ttl\r\n:3\r\n:42\r\n", ':', 0);
    ONE("|0\r\n+OK\r\n", '+', 0);
    ONE("|1\r\n+a\r\n+b\r\n$-1\r\n", '$', -1);
    /* inside an aggregate it does not count as an element */
    ONE("*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n", '*', 2);
    ONE("*1\r\n:1\r\n", '*', 1);
    ONE("%1\r\n|1\r\n+a\r\n+b\r\n+k\r\n|1\r\n+c\r\n+d\r\n+v\r\n", '%', 1);
    /* attribute before an aggregate element, attribute inside an attribute */
    ONE("*1\r\n|1\r\n+a\r\n+b\r\n*2\r\n:1\r\n:2\r\n", '*', 1);
    ONE("|1\r\n|1\r\n+x\r\n+y\r\n+a\r\n+b\r\n+value\r\n", '+', 0);
    /* several attributes in a row */
    ONE("|1\r\n+a\r\n+b\r\n|1\r\n+c\r\n+d\r\n-ERR x\r\n", '-', 0);
    /* attribute value that is itself an aggregate */
    ONE("|1\r\n+a\r\n*2\r\n+x\r\n+y\r\n>1\r\n+p\r\n", '>', 1);
}

Test(aggregates, attribute_needs_its_value)
{
    /* an attribute alone is not a complete reply */
    resp_scanner s;
    size_t n = 0;
    resp_scanner_init(&s);
    cr_assert_eq(resp_scan(&s, "|1\r\n+a\r\n+b\r\n", 12, &n), RESP_AGAIN);
    cr_assert_eq(resp_scan(&s, "|1\r\n+a\r\n+b\r\n:7\r\n", 16, &n), RESP_OK);
    cr_assert_eq(n, 16);
    cr_assert_eq(s.type, ':');
    resp_scanner_init(&s);
    cr_assert_eq(resp_scan(&s, "*1\r\n|1\r\n+a\r\n+b\r\n", 16, &n), RESP_AGAIN);
}

Test(aggregates, invalid_lengths)
{
    ERR("*abc\r\n", "invalid aggregate length");
    ERR("*-2\r\n", "invalid aggregate length");
    ERR("*01\r\n", "invalid aggregate length");
    ERR("%-5\r\n", "invalid aggregate length");
    ERR("~\r\n", "invalid aggregate length");
    ERR(">1x\r\n", "invalid aggregate length");
    ERR("|-1\r\n+OK\r\n", "invalid attribute length");
    ERR("%9223372036854775807\r\n", "invalid aggregate length"); /* 2n overflows */
    ERR("*2\r\n:1\r\n*x\r\n", "invalid aggregate length");
}

Test(aggregates, huge_counts_need_no_memory)
{
    /* counts are only counted down: nothing is allocated from them */
    resp_scanner s;
    size_t n;
    resp_scanner_init(&s);
    cr_assert_eq(resp_scan(&s, "*9223372036854775807\r\n:1\r\n", 26, &n), RESP_AGAIN);
    resp_scanner_init(&s);
    cr_assert_eq(resp_scan(&s, "%4611686018427387903\r\n", 22, &n), RESP_AGAIN);
}

/* n nested one-element arrays around ":1\r\n" */
static bytes nested_arrays(int n, char agg)
{
    char *b = malloc((size_t)n * 4 + 8);
    size_t len = 0;
    cr_assert_not_null(b);
    for (int i = 0; i < n; i++) {
        b[len++] = agg;
        memcpy(b + len, "1\r\n", 3);
        len += 3;
    }
    memcpy(b + len, ":1\r\n", 4);
    return (bytes){ b, len + 4 };
}

Test(depth, default_limit_is_128)
{
    bytes ok = nested_arrays(128, '*');
    expect_reply_l(NULL, ok, ok.n, '*', 1);
    free((void *)ok.p);
    bytes deep = nested_arrays(129, '*');
    expect_err_l(NULL, deep, "too deep reply nesting");
    free((void *)deep.p);
    bytes deep_sets = nested_arrays(200, '~');
    expect_err_l(NULL, deep_sets, "too deep reply nesting");
    free((void *)deep_sets.p);
}

Test(depth, configured_limit)
{
    resp_scanner lim;
    resp_scanner_init(&lim);
    lim.max_depth = 3;
    expect_reply_l(&lim, B("*1\r\n*1\r\n*1\r\n:1\r\n"), 16, '*', 1);
    expect_reply_l(&lim, B("*2\r\n*1\r\n*1\r\n:1\r\n*1\r\n*1\r\n:2\r\n"), 28, '*', 2);
    expect_err_l(&lim, B("*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n"), "too deep reply nesting");
    /* attributes and maps are frames too */
    expect_err_l(&lim, B("*1\r\n%1\r\n|1\r\n*1\r\n"), "too deep reply nesting");
    lim.max_depth = 0;
    expect_reply_l(&lim, B(":1\r\n"), 4, ':', 0);
    expect_reply_l(&lim, B("*0\r\n"), 4, '*', 0); /* empty: no frame opened */
    expect_err_l(&lim, B("*1\r\n:1\r\n"), "too deep reply nesting");
}

Test(depth, limit_above_stack_size_is_clamped)
{
    resp_scanner lim;
    resp_scanner_init(&lim);
    lim.max_depth = 100000;
    bytes ok = nested_arrays(RESP_DEFAULT_MAX_DEPTH, '>');
    expect_reply_l(&lim, ok, ok.n, '>', 1);
    free((void *)ok.p);
    bytes deep = nested_arrays(RESP_DEFAULT_MAX_DEPTH + 1, '*');
    expect_err_l(&lim, deep, "too deep reply nesting");
    free((void *)deep.p);
    lim.max_depth = -5;
    expect_err_l(&lim, B("*1\r\n:1\r\n"), "too deep reply nesting");
}

/* ---- errors --------------------------------------------------------------- */

Test(errors, unknown_type_byte)
{
    ERR("x\r\n", "unknown reply type byte 'x'");
    ERR("\x01\r\n", "unknown reply type byte 0x01");
    ERR("\xff", "unknown reply type byte 0xff");
    ERR(" +OK\r\n", "unknown reply type byte 0x20");
    ERR("\r\n", "unknown reply type byte 0x0d");
    ERR("*2\r\n:1\r\nQ\r\n", "unknown reply type byte 'Q'");
    ERR("*1\r\n&\r\n", "unknown reply type byte '&'");
}

Test(errors, streamed_types_rejected)
{
    ERR("$?\r\n;4\r\nHell\r\n;0\r\n", "streamed RESP3");
    ERR("*?\r\n:1\r\n.\r\n", "streamed RESP3");
    ERR("~?\r\n", "streamed RESP3");
    ERR("%?\r\n", "streamed RESP3");
    ERR(";4\r\nHell\r\n", "streamed RESP3");
    ERR(".\r\n", "streamed RESP3");
}

Test(errors, reset_clears_the_error)
{
    resp_scanner s;
    size_t n;
    resp_scanner_init(&s);
    s.max_depth = 5;
    cr_assert_eq(resp_scan(&s, "?\r\n", 3, &n), RESP_ERR);
    cr_assert_eq(resp_scan(&s, "+OK\r\n", 5, &n), RESP_ERR);
    resp_scanner_reset(&s);
    cr_assert_str_eq(s.err, "");
    cr_assert_eq(s.max_depth, 5, "reset keeps the limits");
    cr_assert_eq(resp_scan(&s, "*2\r\n:1\r\n", 8, &n), RESP_AGAIN);
    resp_scanner_reset(&s); /* forget the partial reply */
    cr_assert_eq(resp_scan(&s, "+OK\r\n", 5, &n), RESP_OK);
    cr_assert_eq(n, 5);
    cr_assert_eq(s.type, '+');
}

Test(errors, shorter_buffer_than_scanned)
{
    resp_scanner s;
    size_t n;
    resp_scanner_init(&s);
    cr_assert_eq(resp_scan(&s, "*2\r\n:1\r\n", 8, &n), RESP_AGAIN);
    cr_assert_eq(resp_scan(&s, "*2\r\n", 4, &n), RESP_ERR);
    cr_assert_neq(s.err[0], '\0');
}

Test(errors, empty_buffer_is_again)
{
    resp_scanner s;
    size_t n;
    resp_scanner_init(&s);
    cr_assert_eq(resp_scan(&s, "", 0, &n), RESP_AGAIN);
    cr_assert_eq(resp_scan(&s, "_\r\n", 3, &n), RESP_OK);
    cr_assert_eq(n, 3);
    cr_assert_eq(s.type, '_');
}

/* ---- pipelines and big replies -------------------------------------------- */

Test(pipeline, several_replies_whole_and_byte_by_byte)
{
    static const char in[] =
        "+OK\r\n"
        "$3\r\nbar\r\n"
        "*2\r\n$1\r\na\r\n$-1\r\n"
        ":42\r\n"
        "-ERR no\r\n"
        "|1\r\n+a\r\n+b\r\n%1\r\n+k\r\n+v\r\n"
        ">3\r\n+message\r\n+c\r\n+m\r\n"
        "*-1\r\n";
    const size_t n = sizeof(in) - 1;
    const size_t want_len[] = { 5, 9, 16, 5, 9, 24, 22, 5 };
    const char want_type[] = { '+', '$', '*', ':', '-', '%', '>', '*' };
    const long long want_top[] = { 0, 3, 2, 0, 0, 1, 3, -1 };

    for (int mode = 0; mode < 2; mode++) {
        resp_scanner s;
        size_t start = 0, got = 0, avail = mode ? 0 : n;
        resp_scanner_init(&s);
        while (start < n) {
            size_t len = 0;
            int rc = scan_moved(&s, in + start, avail - start, &len);
            if (rc == RESP_AGAIN) {
                cr_assert(avail < n, "AGAIN with the whole buffer");
                avail++;
                continue;
            }
            cr_assert_eq(rc, RESP_OK, "rc %d err %s", rc, s.err);
            cr_assert(got < 8);
            cr_assert_eq(len, want_len[got], "reply %zu: len %zu", got, len);
            cr_assert_eq(s.type, want_type[got], "reply %zu", got);
            cr_assert_eq(s.top_len, want_top[got], "reply %zu", got);
            start += len;
            got++;
        }
        cr_assert_eq(got, 8);
    }
}

Test(big, ten_megabyte_bulk_in_4k_chunks, .timeout = 60)
{
    const size_t blen = 10 * 1024 * 1024;
    static const char head[] = "$10485760\r\n";
    size_t hl = sizeof(head) - 1, n = hl + blen + 2 + 5, avail = 0, got = 0;
    char *src = malloc(n), *buf = NULL;
    resp_scanner s;
    int rc = RESP_AGAIN;

    cr_assert_not_null(src);
    memcpy(src, head, hl);
    memset(src + hl, '\r', blen); /* CRs everywhere: payload is skipped by count */
    memcpy(src + hl + blen, "\r\n+OK\r\n", 7);
    resp_scanner_init(&s);
    while (rc == RESP_AGAIN) {
        size_t prev = avail;
        avail = avail + 4096 < n ? avail + 4096 : n;
        buf = realloc(buf, avail); /* may move */
        cr_assert_not_null(buf);
        memcpy(buf + prev, src + prev, avail - prev);
        rc = resp_scan(&s, buf, avail, &got);
        if (rc == RESP_AGAIN) cr_assert_lt(avail, hl + blen + 2);
    }
    cr_assert_eq(rc, RESP_OK, "err %s", s.err);
    cr_assert_eq(got, hl + blen + 2);
    cr_assert_eq(s.type, '$');
    cr_assert_eq(s.top_len, (long long)blen);
    cr_assert_eq(resp_scan(&s, buf + got, avail - got, &got), RESP_OK);
    cr_assert_eq(got, 5);
    cr_assert_eq(s.type, '+');
    free(buf);
    free(src);
}

Test(big, one_million_elements_in_chunks, .timeout = 60)
{
    const size_t count = 1000000;
    size_t n = 0, avail = 0, got = 0, calls = 0;
    char *buf = malloc(32 + count * 9);
    resp_scanner s;
    int rc = RESP_AGAIN;

    cr_assert_not_null(buf);
    n += (size_t)sprintf(buf, "*%zu\r\n", count);
    for (size_t i = 0; i < count; i++) {
        if (i % 2) {
            memcpy(buf + n, "$1\r\nx\r\n", 7);
            n += 7;
        } else {
            memcpy(buf + n, ":12\r\n", 5);
            n += 5;
        }
    }
    resp_scanner_init(&s);
    while (rc == RESP_AGAIN) {
        avail = avail + 4096 < n ? avail + 4096 : n;
        rc = resp_scan(&s, buf, avail, &got);
        calls++;
    }
    cr_assert_eq(rc, RESP_OK, "err %s", s.err);
    cr_assert_eq(got, n);
    cr_assert_eq(s.top_len, (long long)count);
    cr_assert_gt(calls, 1000);
    free(buf);
}

/* ---- generated replies and fuzz ------------------------------------------- */

static uint64_t rng_state;
static uint32_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}

typedef struct {
    char *b;
    size_t n, cap;
} sbuf;

static void put(sbuf *s, const void *p, size_t n)
{
    if (s->n + n > s->cap) {
        s->cap = (s->n + n) * 2 + 64;
        s->b = realloc(s->b, s->cap);
        cr_assert_not_null(s->b);
    }
    memcpy(s->b + s->n, p, n);
    s->n += n;
}

static void putf(sbuf *s, const char *fmt, long long v)
{
    char tmp[64];
    int l = snprintf(tmp, sizeof(tmp), fmt, v);
    put(s, tmp, (size_t)l);
}

/* Append one random valid RESP3 value (attributes allowed before it) nested
 * at most `depth` more levels; its outermost type / top_len go to *t / *tl. */
static void gen_value(sbuf *s, int depth, char *t, long long *tl)
{
    static const char lines[] = "+-:_,#(";
    static const char aggs[] = "*~>%";
    char dummy_t;
    long long dummy_l;
    unsigned r = rnd() % 10;

    if (depth > 0 && rnd() % 8 == 0) { /* attribute first */
        long long n = rnd() % 2;
        putf(s, "|%lld\r\n", n);
        for (long long i = 0; i < 2 * n; i++) gen_value(s, depth - 1, &dummy_t, &dummy_l);
    }
    if (r < 4 || depth == 0) {
        char c = lines[rnd() % 7];
        int l = (int)(rnd() % 6);
        put(s, &c, 1);
        for (int i = 0; i < l; i++) put(s, (rnd() % 5) ? "a" : "\r", 1);
        put(s, "\r\n", 2);
        *t = c;
        *tl = 0;
    } else if (r < 7) {
        char c = "$!="[rnd() % 3];
        long long l = (rnd() % 8 == 0) ? -1 : (long long)(rnd() % 9);
        put(s, &c, 1);
        putf(s, "%lld\r\n", l);
        for (long long i = 0; i < l; i++) put(s, (rnd() % 3) ? "z" : "\n", 1);
        if (l >= 0) put(s, "\r\n", 2);
        *t = c;
        *tl = l;
    } else {
        char c = aggs[rnd() % 4];
        long long n = (rnd() % 10 == 0) ? -1 : (long long)(rnd() % 4);
        long long elems = (c == '%' && n > 0) ? 2 * n : n;
        put(s, &c, 1);
        putf(s, "%lld\r\n", n);
        for (long long i = 0; i < elems; i++) gen_value(s, depth - 1, &dummy_t, &dummy_l);
        *t = c;
        *tl = n;
    }
}

Test(generated, random_valid_pipelines, .timeout = 300)
{
    rng_state = 0x2545f4914f6cdd1dULL;
    for (int iter = 0; iter < 3000; iter++) {
        sbuf s = { 0 };
        size_t ends[8];
        char types[8];
        long long tops[8];
        int nrep = 1 + (int)(rnd() % 8);

        for (int i = 0; i < nrep; i++) {
            gen_value(&s, (int)(rnd() % 6), &types[i], &tops[i]);
            ends[i] = s.n;
        }
        /* whole, then growing byte by byte, through one scanner */
        for (int mode = 0; mode < 2; mode++) {
            resp_scanner sc;
            size_t start = 0, avail = mode ? 0 : s.n;
            int got = 0;
            resp_scanner_init(&sc);
            while (start < s.n) {
                size_t len = 0;
                int rc = scan_moved(&sc, s.b + start, avail - start, &len);
                if (rc == RESP_AGAIN) {
                    cr_assert(avail < s.n, "iter %d: AGAIN with everything", iter);
                    avail++;
                    continue;
                }
                cr_assert_eq(rc, RESP_OK, "iter %d: rc %d err %s", iter, rc, sc.err);
                cr_assert_eq(start + len, ends[got], "iter %d reply %d", iter, got);
                cr_assert_eq(sc.type, types[got], "iter %d reply %d", iter, got);
                cr_assert_eq(sc.top_len, tops[got], "iter %d reply %d", iter, got);
                start += len;
                got++;
            }
            cr_assert_eq(got, nrep);
        }
        free(s.b);
    }
}

typedef struct {
    int rc;
    size_t len;
    char type;
    long long top;
    char err[RESP_ERR_MAX];
} outcome;

Test(fuzz, whole_equals_byte_by_byte_on_100k_inputs, .timeout = 300)
{
    static const char alpha[] = "+-:$*%|~>_,#(!=\r\n\r\n0123456789-?zx\0";
    size_t oks = 0, errs = 0, agains = 0;
    rng_state = 0x9e3779b97f4a7c15ULL;
    for (int iter = 0; iter < 100000; iter++) {
        sbuf s = { 0 };
        outcome o[2];
        resp_scanner tmpl;
        char t;
        long long tl;

        if (rnd() % 3 == 0) {
            size_t n = rnd() % 40;
            for (size_t i = 0; i < n; i++) put(&s, &alpha[rnd() % (sizeof(alpha) - 1)], 1);
        } else {
            gen_value(&s, (int)(rnd() % 5), &t, &tl);
            for (int m = (int)(rnd() % 3); m > 0 && s.n > 0; m--) {
                size_t at = rnd() % s.n;
                switch (rnd() % 3) {
                case 0: s.b[at] = alpha[rnd() % (sizeof(alpha) - 1)]; break;
                case 1: memmove(s.b + at, s.b + at + 1, s.n - at - 1); s.n--; break;
                default: s.n = at; break; /* truncate */
                }
            }
        }
        resp_scanner_init(&tmpl);
        if (rnd() % 4 == 0) tmpl.max_depth = (int)(rnd() % 3);
        if (rnd() % 4 == 0) tmpl.max_bulk_len = rnd() % 5;

        for (int mode = 0; mode < 2; mode++) {
            resp_scanner sc;
            size_t len = 0;
            int rc = RESP_AGAIN;
            init_with(&sc, &tmpl);
            if (mode == 0) {
                rc = scan_moved(&sc, s.b, s.n, &len);
            } else {
                for (size_t k = 0; k <= s.n && rc == RESP_AGAIN; k++)
                    rc = scan_moved(&sc, s.b, k, &len);
            }
            memset(&o[mode], 0, sizeof(o[mode]));
            o[mode].rc = rc;
            if (rc == RESP_OK) {
                o[mode].len = len;
                o[mode].type = sc.type;
                o[mode].top = sc.top_len;
                cr_assert_leq(len, s.n);
            }
            if (rc == RESP_ERR) memcpy(o[mode].err, sc.err, sizeof(sc.err));
        }
        cr_assert_eq(o[0].rc, o[1].rc, "iter %d: rc %d vs %d", iter, o[0].rc, o[1].rc);
        cr_assert_eq(o[0].len, o[1].len, "iter %d", iter);
        cr_assert_eq(o[0].type, o[1].type, "iter %d", iter);
        cr_assert_eq(o[0].top, o[1].top, "iter %d", iter);
        cr_assert_str_eq(o[0].err, o[1].err, "iter %d", iter);
        if (o[0].rc == RESP_ERR)
            cr_assert(strncmp(o[0].err, "Protocol error: ", 16) == 0, "iter %d: %s", iter, o[0].err);
        oks += o[0].rc == RESP_OK;
        errs += o[0].rc == RESP_ERR;
        agains += o[0].rc == RESP_AGAIN;
        free(s.b);
    }
    cr_assert_gt(oks, 10000);
    cr_assert_gt(errs, 10000);
    cr_assert_gt(agains, 1000);
}
