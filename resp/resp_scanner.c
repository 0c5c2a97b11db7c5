/* resp_scanner.c -- resumable boundary scanner for RESP2/RESP3 replies.
 *
 * The scanner walks a reply element by element and only keeps counts:
 *
 *   left[0]            1 for the reply itself (the top-level "frame")
 *   left[1..depth]     elements still expected by each open aggregate,
 *                      negative for an attribute frame ('|'), see below
 *
 * An element is either a line ('+' '-' ':' '_' ',' '#' '('), a blob with a
 * length ('$' '!' '=', "-1" meaning null) whose payload is skipped by count,
 * or an aggregate ('*' '~' '>' with n elements, '%' and '|' with 2n).  When an
 * element ends it is counted against the innermost open frame; a frame whose
 * count reaches zero is itself an element that ended, and so on outwards.
 * When left[0] reaches zero the reply is complete.
 *
 * Attributes: "|<n>" annotates the value that follows it and does not count
 * as an element of the enclosing aggregate (RESP3 spec).  Its frame stores its
 * count negated; when it completes it is popped without counting against its
 * parent, so the parent (or the top level) still waits for the value.  The
 * reply's s->type / s->top_len describe that value, not the attribute,
 * because callers use them to recognise errors ('-') and pushes ('>').
 *
 * Choices where the header leaves room, taken closest to Redis/hiredis:
 *   - a line ends at the first "\r\n" (a lone '\r' is content, as in
 *     hiredis); a line, type byte included, may be at most
 *     RESP_MAX_INLINE_LEN bytes, else "too big reply line";
 *   - the 2 bytes after a blob payload must be "\r\n" (a mismatch means we
 *     lost the framing, so it is an error rather than silently skipped);
 *   - lengths are parsed like Redis's string2ll() (no '+', no leading zeros);
 *     "-1" is accepted as null for blobs and for every aggregate except '|'
 *     (hiredis accepts it for all), anything below -1 is an error;
 *   - streamed RESP3 ("$?", "*?", and the ';' / '.' chunk types) is rejected;
 *   - s->top_len is the declared number of the outermost value for every type
 *     that has one (blobs: their length; aggregates: their count as written,
 *     so n pairs for '%'), -1 for null, and 0 for line types;
 *   - s->max_depth is clamped to [0, RESP_DEFAULT_MAX_DEPTH]; opening an
 *     aggregate when max_depth of them are already open is an error.
 *
 * Resumable: s->pos is where the current element starts (or, inside a blob,
 * where its payload starts), s->scan how far its header line was searched,
 * so each byte is examined once however the reply is chunked. */
#include "resp/resp_scanner.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum {
    SC_ELEM = 0, /* expecting the header of an element at s->pos */
    SC_BLOB,     /* skipping s->blob_left bytes (payload + CRLF) from s->pos */
    SC_ERROR     /* sticky error, see s->err */
};

/* Kinds of type bytes. */
enum { K_UNKNOWN = 0, K_LINE, K_BLOB, K_AGG, K_MAP, K_ATTR, K_STREAM };

#define LINE_WINDOW ((size_t)RESP_MAX_INLINE_LEN + 1) /* where a line's CR may be */
#define SCAN_DONE 2 /* internal: the reply is complete (distinct from RESP_*) */

static int kind_of(char t)
{
    switch (t) {
    case '+': case '-': case ':': case '_': case ',': case '#': case '(':
        return K_LINE;
    case '$': case '!': case '=':
        return K_BLOB;
    case '*': case '~': case '>':
        return K_AGG;
    case '%':
        return K_MAP;
    case '|':
        return K_ATTR;
    case ';': case '.':
        return K_STREAM;
    default:
        return K_UNKNOWN;
    }
}


/* Enter the sticky error state; returns RESP_ERR. */
static int fail(resp_scanner *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(resp_scanner *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof(s->err), fmt, ap);
    va_end(ap);
    s->state = SC_ERROR;
    return RESP_ERR;
}

/* Forget the reply in progress (not the error, not the limits). */
static void start_reply(resp_scanner *s)
{
    s->state = SC_ELEM;
    s->pos = 0;
    s->scan = 0;
    s->depth = 0;
    s->left[0] = 1;
    s->blob_left = 0;
}

/* Find the CRLF ending the line that starts at s->pos, resuming at s->scan.
 * Returns RESP_OK with *cr = offset of the '\r', RESP_AGAIN, or RESP_ERR
 * when no CRLF starts within LINE_WINDOW bytes of the line start. */
static int find_crlf(resp_scanner *s, const char *buf, size_t len, size_t *cr)
{
    size_t window_end = s->pos + LINE_WINDOW;
    size_t end = len < window_end ? len : window_end;

    while (s->scan < end) {
        const char *hit = memchr(buf + s->scan, '\r', end - s->scan);
        size_t j;
        if (hit == NULL) {
            s->scan = end;
            break;
        }
        j = (size_t)(hit - buf);
        if (j + 1 >= len) {
            s->scan = j; /* look at this '\r' again once its next byte is here */
            return RESP_AGAIN;
        }
        if (buf[j + 1] == '\n') {
            *cr = j;
            return RESP_OK;
        }
        s->scan = j + 1;
    }
    if (end == window_end)
        return fail(s, "Protocol error: too big reply line (no CRLF within %d bytes)",
                    RESP_MAX_INLINE_LEN);
    return RESP_AGAIN;
}

/* One element (of any kind, aggregates included) has ended: count it against
 * the open frames.  Returns 1 when the whole reply is complete, else 0. */
static int element_done(resp_scanner *s)
{
    for (;;) {
        long long *l = &s->left[s->depth];
        int attr = *l < 0;

        if (attr) (*l)++;
        else (*l)--;
        if (*l != 0) return 0;
        if (s->depth == 0) return 1;
        s->depth--;
        /* The frame just closed is one element of its parent, unless it was
         * an attribute, which annotates the next element instead. */
        if (attr) return 0;
    }
}

/* Record the type of the outermost value (attributes excluded). */
static void note_top(resp_scanner *s, char t, long long n)
{
    if (s->depth == 0 && t != '|') {
        s->type = t;
        s->top_len = n;
    }
}

/* Handle a header line "<t><number>" for blobs and aggregates; the element
 * started at s->pos, its '\r' is at cr.  Returns SCAN_DONE when the reply is
 * complete, 0 to go on, RESP_ERR on bad input. */
static int header(resp_scanner *s, const char *buf, size_t cr, int kind)
{
    char t = buf[s->pos];
    const char *num = buf + s->pos + 1;
    size_t nlen = cr - s->pos - 1;
    long long n;

    if (nlen == 1 && num[0] == '?')
        return fail(s, "Protocol error: streamed RESP3 reply '%c?' is not supported", t);
    if (!resp_parse_ll(num, nlen, &n) || n < -1)
        return fail(s, "Protocol error: invalid %s length in reply",
                    kind == K_BLOB ? "bulk" : "aggregate");
    note_top(s, t, n);
    s->pos = cr + 2;
    s->scan = s->pos;
    if (kind == K_BLOB) {
        if (n == -1) return element_done(s) ? SCAN_DONE : 0;
        if (n > s->max_bulk_len || (unsigned long long)n > SIZE_MAX - 2)
            return fail(s, "Protocol error: bulk length %lld exceeds the limit of %lld",
                        n, s->max_bulk_len);
        s->blob_left = n + 2;
        s->state = SC_BLOB;
        return 0;
    }
    if (kind == K_ATTR) {
        if (n == -1) return fail(s, "Protocol error: invalid attribute length in reply");
        if (n == 0) return 0; /* empty attribute: annotates, counts for nothing */
    }
    if (n <= 0) return element_done(s) ? SCAN_DONE : 0; /* empty or null aggregate */
    if (kind == K_MAP || kind == K_ATTR) {
        if (n > LLONG_MAX / 2)
            return fail(s, "Protocol error: invalid aggregate length in reply");
        n *= 2;
    }
    {
        int max = s->max_depth < 0 ? 0
                : s->max_depth > RESP_DEFAULT_MAX_DEPTH ? RESP_DEFAULT_MAX_DEPTH
                : s->max_depth;
        if (s->depth >= max)
            return fail(s, "Protocol error: too deep reply nesting (more than %d levels)", max);
    }
    s->depth++;
    s->left[s->depth] = kind == K_ATTR ? -n : n;
    return 0;
}

/* Scan elements from s->pos until the reply completes (SCAN_DONE), input
 * runs out (RESP_AGAIN) or the input is invalid (RESP_ERR). */
static int scan_elements(resp_scanner *s, const char *buf, size_t len)
{
    for (;;) {
        size_t cr = 0;
        int kind, rc;
        char t;

        if (s->state == SC_BLOB) {
            size_t end;
            if (len - s->pos < (size_t)s->blob_left) return RESP_AGAIN;
            end = s->pos + (size_t)s->blob_left;
            if (buf[end - 2] != '\r' || buf[end - 1] != '\n')
                return fail(s, "Protocol error: bulk payload not followed by CRLF");
            s->pos = end;
            s->scan = end;
            s->blob_left = 0;
            s->state = SC_ELEM;
            if (element_done(s)) return SCAN_DONE;
            continue;
        }
        if (s->pos >= len) return RESP_AGAIN;
        t = buf[s->pos];
        kind = kind_of(t);
        if (kind == K_UNKNOWN) {
            if (t > 0x20 && t < 0x7f)
                return fail(s, "Protocol error: unknown reply type byte '%c'", t);
            return fail(s, "Protocol error: unknown reply type byte 0x%02x", (unsigned char)t);
        }
        if (kind == K_STREAM)
            return fail(s, "Protocol error: streamed RESP3 reply '%c' is not supported", t);
        rc = find_crlf(s, buf, len, &cr);
        if (rc != RESP_OK) return rc;
        if (kind == K_LINE) {
            note_top(s, t, 0);
            s->pos = cr + 2;
            s->scan = s->pos;
            if (element_done(s)) return SCAN_DONE;
            continue;
        }
        rc = header(s, buf, cr, kind);
        if (rc != 0) return rc;
    }
}

void resp_scanner_init(resp_scanner *s)
{
    memset(s, 0, sizeof(*s));
    s->max_bulk_len = RESP_DEFAULT_MAX_BULK_LEN;
    s->max_depth = RESP_DEFAULT_MAX_DEPTH;
    start_reply(s);
}

void resp_scanner_reset(resp_scanner *s)
{
    s->err[0] = '\0';
    s->type = 0;
    s->top_len = 0;
    start_reply(s);
}

int resp_scan(resp_scanner *s, const char *buf, size_t len, size_t *reply_len)
{
    int rc;

    if (s->state == SC_ERROR) return RESP_ERR;
    if (s->pos > len || s->scan > len)
        return fail(s, "internal error: reply buffer shorter than already scanned");
    rc = scan_elements(s, buf, len);
    if (rc != SCAN_DONE) return rc;
    *reply_len = s->pos;
    start_reply(s);
    return RESP_OK;
}
