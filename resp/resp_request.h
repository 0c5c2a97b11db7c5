/* resp_request.h -- resumable parser of client requests (multibulk and inline).
 *
 * Push style, like hiredis's reader, but without copying: the caller owns the
 * bytes and passes the buffer again on each call, starting at the first byte
 * of the request being parsed (the buffer may have moved or grown in between,
 * so the parser stores offsets, never pointers into it).
 *
 *   resp_req_parser p; resp_req_init(&p);
 *   for (;;) {
 *       int rc = resp_req_parse(&p, buf + start, len - start);
 *       if (rc == RESP_AGAIN) break;           // read more, call again
 *       if (rc == RESP_ERR) { reply "-ERR " p.err, close; }
 *       if (p.argc > 0) dispatch(&p);           // argv valid until next call
 *       start += p.req_len;                     // parser reset itself
 *   }
 *
 * Multibulk arguments are (off, len) relative to the request's first byte.
 * Inline arguments are decoded (quotes, escapes) into a parser-owned scratch
 * buffer; then p.is_inline is 1 and off is relative to p.inline_buf.
 * resp_req_arg() hides the difference. */
#ifndef RESP_REQUEST_H
#define RESP_REQUEST_H

#include "resp/resp.h"

typedef struct resp_arg {
    size_t off;
    size_t len;
} resp_arg;

typedef struct resp_req_parser {
    /* limits: set by the caller, may change between requests */
    long long max_bulk_len;        /* default RESP_DEFAULT_MAX_BULK_LEN */
    long long max_multibulk_len;   /* default RESP_DEFAULT_MAX_MULTIBULK_LEN */
    int unauthenticated;           /* 1: Redis's tighter pre-AUTH limits apply */

    /* result of the last RESP_OK: valid until the next call */
    size_t argc;
    resp_arg *argv;                /* parser-owned, grown on demand, reused */
    size_t req_len;                /* bytes the request occupied in the buffer */
    int is_inline;
    char *inline_buf;              /* parser-owned scratch for decoded inline args */

    /* error of the last RESP_ERR (sticky until resp_req_reset), Redis's
     * wording without the "-ERR " prefix, e.g. "Protocol error: invalid bulk length" */
    char err[RESP_ERR_MAX];

    /* private resumable state */
    int state;
    size_t pos;
    long long multibulk_left;
    long long bulk_len;
    size_t argv_cap;
    size_t inline_cap;
    size_t scan;                   /* how far the current line was searched for its end */
} resp_req_parser;

/* Initialise with default limits. Allocates nothing until first use. */
void resp_req_init(resp_req_parser *p);
/* Forget any partial request and a sticky error; keeps limits and scratch. */
void resp_req_reset(resp_req_parser *p);
/* Free parser-owned memory (argv, inline scratch); p may be re-inited after. */
void resp_req_free(resp_req_parser *p);
/* Shrink scratch memory back to nothing if it grew large (call when idle). */
void resp_req_shrink(resp_req_parser *p);

/* Parse one request from buf[0..len), buf starting at the request's first
 * byte.  Returns RESP_OK (argc/argv/req_len set; argc may be 0 for an empty
 * line or "*0", which the caller simply skips), RESP_AGAIN (incomplete; the
 * work done so far is kept) or RESP_ERR (p->err set). */
int resp_req_parse(resp_req_parser *p, const char *buf, size_t len);

/* Pointer to argument i of the last parsed request; buf is the same request
 * start that was passed to resp_req_parse. */
static inline const char *resp_req_arg(const resp_req_parser *p, const char *buf,
                                       size_t i, size_t *len)
{
    *len = p->argv[i].len;
    return (p->is_inline ? p->inline_buf : buf) + p->argv[i].off;
}

#endif
