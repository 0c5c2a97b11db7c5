/* resp_request.c -- resumable parser of client requests (multibulk and inline).
 *
 * The proxy forwards multibulk requests to Redis byte for byte, so its idea
 * of where a request ends must be exactly Redis's, or the two would disagree
 * about the framing of everything that follows.  The rules below therefore
 * follow Redis 7.0's processMultibulkBuffer()/processInlineBuffer():
 *
 *   - the first byte decides: '*' is a multibulk request, anything else an
 *     inline line;
 *   - a count line ("*<n>" or "$<len>") ends at the first '\r'; the byte after
 *     it is skipped without being checked (Redis only asks that it exists),
 *     and likewise the 2 bytes after a bulk payload;
 *   - integers are parsed as Redis's string2ll(): an optional '-', then "0" or
 *     a digit 1-9 followed by digits, at most 20 characters, no overflow (so
 *     "+1", "01", "-0" and "" are invalid);
 *   - the checks run in Redis's order, with Redis's error strings.
 *
 * Where Redis's behaviour depends on how its reads happen to be chunked, we
 * take what Redis does when the bytes arrive one at a time, which makes our
 * result independent of the chunking (the unit tests rely on this):
 *   - a line is "too big" when its terminator ('\r' for count lines, '\n' for
 *     inline lines) is not within the first RESP_MAX_INLINE_LEN + 1 bytes
 *     from the line start (Redis errors once more than PROTO_INLINE_MAX_SIZE
 *     bytes are buffered without one);
 *   - Redis searches with strchr(), so a NUL byte hides the terminator and
 *     the client waits until the 64 KiB limit.  We search with memchr() and
 *     treat NUL as an ordinary byte: an inline argument may contain it, and a
 *     count line containing it is simply an invalid integer.
 *
 * Inline lines are split like Redis's sdssplitargs(): C-locale blanks
 * separate arguments; "double quotes" understand \n \r \t \b \a \xHH and
 * \<any> (that character); 'single quotes' understand \' only; a closing
 * quote must be followed by a blank or the end of the line; a quote inside an
 * unquoted word starts a quoted part of the same argument (foo"bar" is
 * "foobar").  Decoded arguments are written to p->inline_buf.
 *
 * Work is linear: a line is searched for its terminator once (p->scan keeps
 * the search position), a bulk payload is skipped by count, and parsed
 * arguments are kept in p->argv across RESP_AGAIN returns.  Nothing is ever
 * sized from a count the client declared. */
#include "resp/resp_request.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parser states (p->state). */
enum {
    RQ_START = 0,  /* nothing of the next request examined yet */
    RQ_MB_COUNT,   /* searching the "*<n>" line; p->scan = search position */
    RQ_BULK_LEN,   /* searching the "$<len>" line starting at p->pos */
    RQ_BULK_DATA,  /* waiting for p->bulk_len + 2 bytes from p->pos */
    RQ_INLINE,     /* searching the '\n' of an inline line */
    RQ_ERROR       /* sticky error, see p->err */
};

#define ARGV_MIN 8                 /* first argv allocation */
#define ARGV_KEEP 1024             /* resp_req_shrink frees argv beyond this */
#define INLINE_MIN 256             /* first inline_buf allocation */
#define INLINE_KEEP (16 * 1024)    /* resp_req_shrink frees inline_buf beyond this */
#define LINE_WINDOW ((size_t)RESP_MAX_INLINE_LEN + 1) /* where a terminator may be */
#define MB_ARGS_NEXT (-2)          /* parse_mb_count: count read, arguments follow */

/* Outcome of find_eol(). */
typedef enum { EOL_FOUND, EOL_AGAIN, EOL_TOO_BIG } eol_rc;

/* Search the terminator byte `c` of the line that starts at buf[start],
 * resuming at *scan (which must be >= start) so no byte is searched twice.
 * `need_after` is how many bytes must follow the terminator before the line
 * counts as complete (1 for count lines: Redis wants the byte after '\r').
 * Returns EOL_FOUND with *at = terminator offset; EOL_AGAIN when more bytes
 * are needed (*scan updated); EOL_TOO_BIG when no terminator lies within
 * LINE_WINDOW bytes of the line start. */
static eol_rc find_eol(const char *buf, size_t len, size_t start, size_t *scan,
                       char c, size_t need_after, size_t *at)
{
    size_t window_end = start + LINE_WINDOW;
    size_t end = len < window_end ? len : window_end;

    if (*scan < end) {
        const char *hit = memchr(buf + *scan, c, end - *scan);
        if (hit != NULL) {
            size_t j = (size_t)(hit - buf);
            *scan = j;
            if (len - j <= need_after) return EOL_AGAIN;
            *at = j;
            return EOL_FOUND;
        }
        *scan = end;
    }
    return end == window_end ? EOL_TOO_BIG : EOL_AGAIN;
}


/* Enter the sticky error state with a formatted message; returns RESP_ERR. */
static int fail(resp_req_parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int fail(resp_req_parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof(p->err), fmt, ap);
    va_end(ap);
    p->state = RQ_ERROR;
    p->argc = 0;
    return RESP_ERR;
}

/* A request of req_len bytes is complete: publish it and get ready for the
 * next one.  Returns RESP_OK. */
static int finish(resp_req_parser *p, size_t req_len)
{
    p->req_len = req_len;
    p->state = RQ_START;
    p->pos = 0;
    p->scan = 0;
    p->multibulk_left = 0;
    p->bulk_len = 0;
    return RESP_OK;
}

/* Append (off, len) to p->argv, doubling it when full.  argv only grows with
 * arguments actually received, never with a declared count.  Returns 0, or
 * -1 on allocation failure (argv unchanged). */
static int push_arg(resp_req_parser *p, size_t off, size_t len)
{
    if (p->argc == p->argv_cap) {
        size_t ncap = p->argv_cap ? p->argv_cap * 2 : ARGV_MIN;
        resp_arg *n;
        if (ncap > SIZE_MAX / sizeof(*n)) return -1;
        n = realloc(p->argv, ncap * sizeof(*n));
        if (n == NULL) return -1;
        p->argv = n;
        p->argv_cap = ncap;
    }
    p->argv[p->argc].off = off;
    p->argv[p->argc].len = len;
    p->argc++;
    return 0;
}

/* ---- multibulk ------------------------------------------------------------ */

/* Parse the "*<n>" line.  Returns RESP_OK with the request finished (n <= 0),
 * RESP_AGAIN, RESP_ERR, or MB_ARGS_NEXT (state RQ_BULK_LEN). */
static int parse_mb_count(resp_req_parser *p, const char *buf, size_t len)
{
    size_t at = 0;
    long long n;

    switch (find_eol(buf, len, 0, &p->scan, '\r', 1, &at)) {
    case EOL_AGAIN: return RESP_AGAIN;
    case EOL_TOO_BIG: return fail(p, "Protocol error: too big mbulk count string");
    case EOL_FOUND: break;
    }
    if (!resp_parse_ll(buf + 1, at - 1, &n) || n > p->max_multibulk_len)
        return fail(p, "Protocol error: invalid multibulk length");
    if (p->unauthenticated && n > RESP_UNAUTH_MAX_MULTIBULK_LEN)
        return fail(p, "Protocol error: unauthenticated multibulk length");
    if (n <= 0) return finish(p, at + 2);
    p->multibulk_left = n;
    p->pos = at + 2;
    p->scan = p->pos;
    p->state = RQ_BULK_LEN;
    return MB_ARGS_NEXT;
}

/* Parse the "$<len>" line at p->pos.  Returns RESP_AGAIN, RESP_ERR, or
 * RESP_OK meaning the length is known (state RQ_BULK_DATA). */
static int parse_bulk_len(resp_req_parser *p, const char *buf, size_t len)
{
    size_t at = 0;
    long long ll;
    char got;

    switch (find_eol(buf, len, p->pos, &p->scan, '\r', 1, &at)) {
    case EOL_AGAIN: return RESP_AGAIN;
    case EOL_TOO_BIG: return fail(p, "Protocol error: too big bulk count string");
    case EOL_FOUND: break;
    }
    got = buf[p->pos];
    if (got != '$') {
        /* Redis 7's addReplyErrorFormat turns CR/LF into spaces; p->err is a
         * C string, so a NUL becomes a space too. */
        if (got == '\r' || got == '\n' || got == '\0') got = ' ';
        return fail(p, "Protocol error: expected '$', got '%c'", got);
    }
    if (!resp_parse_ll(buf + p->pos + 1, at - p->pos - 1, &ll) || ll < 0 ||
        ll > p->max_bulk_len || (unsigned long long)ll > SIZE_MAX - 2)
        return fail(p, "Protocol error: invalid bulk length");
    if (p->unauthenticated && ll > RESP_UNAUTH_MAX_BULK_LEN)
        return fail(p, "Protocol error: unauthenticated bulk length");
    p->bulk_len = ll;
    p->pos = at + 2;
    p->state = RQ_BULK_DATA;
    return RESP_OK;
}

/* Collect the arguments of a multibulk request, resuming where the last
 * call stopped.  Returns RESP_OK (request complete), RESP_AGAIN or RESP_ERR. */
static int parse_mb_args(resp_req_parser *p, const char *buf, size_t len)
{
    while (p->multibulk_left > 0) {
        if (p->state == RQ_BULK_LEN) {
            int rc = parse_bulk_len(p, buf, len);
            if (rc != RESP_OK) return rc;
        }
        if (len - p->pos < (size_t)p->bulk_len + 2) return RESP_AGAIN;
        if (push_arg(p, p->pos, (size_t)p->bulk_len) != 0)
            return fail(p, "out of memory parsing request");
        p->pos += (size_t)p->bulk_len + 2; /* the 2 bytes are not checked, as Redis */
        p->multibulk_left--;
        p->scan = p->pos;
        p->state = RQ_BULK_LEN;
    }
    return finish(p, p->pos);
}

/* ---- inline --------------------------------------------------------------- */

/* isspace() in the C locale, which is what sdssplitargs() runs under. */
static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decode one double-quoted part starting after the opening quote at line[*i].
 * Appends to out[*o]; leaves *i after the closing quote.  Returns 0, or -1 on
 * unbalanced quotes (no closing quote, or one followed by a non-blank). */
static int split_dquoted(const char *line, size_t n, size_t *i, char *out, size_t *o)
{
    for (;;) {
        char c;
        if (*i >= n) return -1;
        c = line[*i];
        if (c == '\\' && *i + 3 < n && line[*i + 1] == 'x' &&
            hex_val(line[*i + 2]) >= 0 && hex_val(line[*i + 3]) >= 0) {
            out[(*o)++] = (char)(hex_val(line[*i + 2]) * 16 + hex_val(line[*i + 3]));
            *i += 4;
        } else if (c == '\\' && *i + 1 < n) {
            char e = line[*i + 1];
            switch (e) {
            case 'n': e = '\n'; break;
            case 'r': e = '\r'; break;
            case 't': e = '\t'; break;
            case 'b': e = '\b'; break;
            case 'a': e = '\a'; break;
            default: break;
            }
            out[(*o)++] = e;
            *i += 2;
        } else if (c == '"') {
            (*i)++;
            return (*i < n && !is_blank(line[*i])) ? -1 : 0;
        } else {
            out[(*o)++] = c;
            (*i)++;
        }
    }
}

/* Same for a single-quoted part: only \' is an escape. */
static int split_squoted(const char *line, size_t n, size_t *i, char *out, size_t *o)
{
    for (;;) {
        char c;
        if (*i >= n) return -1;
        c = line[*i];
        if (c == '\\' && *i + 1 < n && line[*i + 1] == '\'') {
            out[(*o)++] = '\'';
            *i += 2;
        } else if (c == '\'') {
            (*i)++;
            return (*i < n && !is_blank(line[*i])) ? -1 : 0;
        } else {
            out[(*o)++] = c;
            (*i)++;
        }
    }
}

/* Split line[0..n) into arguments decoded into p->inline_buf (which holds
 * at least n bytes: decoding never lengthens).  Returns 0, -1 on unbalanced
 * quotes, -2 on allocation failure. */
static int split_inline(resp_req_parser *p, const char *line, size_t n)
{
    char *out = p->inline_buf;
    size_t i = 0, o = 0;

    for (;;) {
        size_t start;
        int done = 0;

        while (i < n && is_blank(line[i])) i++;
        if (i >= n) return 0;
        start = o;
        while (!done && i < n) {
            char c = line[i];
            int rc = 0;
            if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
                done = 1;
                i++;
            } else if (c == '"') {
                i++;
                rc = split_dquoted(line, n, &i, out, &o);
                done = 1; /* a closing quote ends the argument */
            } else if (c == '\'') {
                i++;
                rc = split_squoted(line, n, &i, out, &o);
                done = 1;
            } else {
                out[o++] = c;
                i++;
            }
            if (rc != 0) return -1;
        }
        if (push_arg(p, start, o - start) != 0) return -2;
    }
}

/* Make inline_buf hold at least `need` bytes.  Returns 0 or -1 (OOM). */
static int reserve_inline(resp_req_parser *p, size_t need)
{
    size_t cap = p->inline_cap ? p->inline_cap : INLINE_MIN;
    char *n;

    if (need <= p->inline_cap) return 0;
    while (cap < need) cap *= 2;
    n = realloc(p->inline_buf, cap);
    if (n == NULL) return -1;
    p->inline_buf = n;
    p->inline_cap = cap;
    return 0;
}

/* Parse an inline request (whole line at once, once its '\n' is here).
 * Returns RESP_OK, RESP_AGAIN or RESP_ERR. */
static int parse_inline(resp_req_parser *p, const char *buf, size_t len)
{
    size_t at = 0, n;
    int rc;

    switch (find_eol(buf, len, 0, &p->scan, '\n', 0, &at)) {
    case EOL_AGAIN: return RESP_AGAIN;
    case EOL_TOO_BIG: return fail(p, "Protocol error: too big inline request");
    case EOL_FOUND: break;
    }
    n = at;
    if (n > 0 && buf[n - 1] == '\r') n--;
    if (reserve_inline(p, n ? n : 1) != 0) return fail(p, "out of memory parsing request");
    p->is_inline = 1;
    rc = split_inline(p, buf, n);
    if (rc == -1) return fail(p, "Protocol error: unbalanced quotes in request");
    if (rc == -2) return fail(p, "out of memory parsing request");
    return finish(p, at + 1);
}

/* ---- public API ----------------------------------------------------------- */

void resp_req_init(resp_req_parser *p)
{
    memset(p, 0, sizeof(*p));
    p->max_bulk_len = RESP_DEFAULT_MAX_BULK_LEN;
    p->max_multibulk_len = RESP_DEFAULT_MAX_MULTIBULK_LEN;
    p->state = RQ_START;
}

void resp_req_reset(resp_req_parser *p)
{
    p->argc = 0;
    p->req_len = 0;
    p->is_inline = 0;
    p->err[0] = '\0';
    finish(p, 0);
}

void resp_req_free(resp_req_parser *p)
{
    free(p->argv);
    free(p->inline_buf);
    p->argv = NULL;
    p->inline_buf = NULL;
    p->argv_cap = 0;
    p->inline_cap = 0;
    resp_req_reset(p);
}

/* Frees argv / inline_buf when they grew past ARGV_KEEP args / INLINE_KEEP
 * bytes.  The result of the last RESP_OK is invalidated (argc set to 0).  The
 * argv of a multibulk request still being received is kept, since it holds
 * that request's arguments parsed so far. */
void resp_req_shrink(resp_req_parser *p)
{
    int mid_request = p->state == RQ_BULK_LEN || p->state == RQ_BULK_DATA;

    if (p->argv_cap > ARGV_KEEP && !mid_request) {
        free(p->argv);
        p->argv = NULL;
        p->argv_cap = 0;
        p->argc = 0;
    }
    if (p->inline_cap > INLINE_KEEP) {
        free(p->inline_buf);
        p->inline_buf = NULL;
        p->inline_cap = 0;
        if (p->is_inline) p->argc = 0;
    }
}

int resp_req_parse(resp_req_parser *p, const char *buf, size_t len)
{
    int rc;

    if (p->state == RQ_ERROR) return RESP_ERR;
    if (p->pos > len || p->scan > len)
        return fail(p, "internal error: request buffer shorter than already parsed");
    if (p->state == RQ_START) {
        p->argc = 0;
        p->req_len = 0;
        p->is_inline = 0;
        if (len == 0) return RESP_AGAIN;
        p->state = buf[0] == '*' ? RQ_MB_COUNT : RQ_INLINE;
        p->scan = 0;
    }
    if (p->state == RQ_INLINE) return parse_inline(p, buf, len);
    if (p->state == RQ_MB_COUNT) {
        rc = parse_mb_count(p, buf, len);
        if (rc != MB_ARGS_NEXT) return rc;
    }
    return parse_mb_args(p, buf, len);
}
