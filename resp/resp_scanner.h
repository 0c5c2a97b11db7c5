/* resp_scanner.h -- resumable boundary scanner for RESP2/RESP3 replies.
 *
 * The proxy never builds reply objects: it only needs to know where each
 * reply ends so the bytes can be forwarded as they are.  The scanner keeps an
 * explicit stack of pending element counts (no recursion) and skips bulk
 * payloads by length, so a 100 MB bulk arriving in many reads costs
 * O(bytes read), not O(n^2).
 *
 *   resp_scanner s; resp_scanner_init(&s);
 *   size_t n;
 *   while ((rc = resp_scan(&s, buf + start, len - start, &n)) == RESP_OK) {
 *       deliver(buf + start, n, s.type);  start += n;   // scanner reset itself
 *   }
 *
 * As with the request parser, buf must start at the first byte of the reply
 * being scanned on every call, and may move between calls. */
#ifndef RESP_SCANNER_H
#define RESP_SCANNER_H

#include "resp/resp.h"

typedef struct resp_scanner {
    /* limits: set by the caller */
    long long max_bulk_len;   /* largest blob accepted; default RESP_DEFAULT_MAX_BULK_LEN */
    int max_depth;            /* deepest nesting accepted, <= RESP_DEFAULT_MAX_DEPTH */

    /* result of the last RESP_OK */
    char type;                /* first byte of the outermost reply: '+', '-', ':', '$', '*', '>', ... */
    long long top_len;        /* for '*', '>', '~', '%', '$': the top-level count (-1 for null), else 0 */

    char err[RESP_ERR_MAX];   /* reason of RESP_ERR, sticky until resp_scanner_reset */

    /* private resumable state */
    int state;
    size_t pos;
    int depth;
    long long left[RESP_DEFAULT_MAX_DEPTH + 1];
    long long blob_left;
    size_t scan;              /* how far the current line was searched for its CRLF */
} resp_scanner;

void resp_scanner_init(resp_scanner *s);
void resp_scanner_reset(resp_scanner *s);

/* Scan one reply in buf[0..len).  RESP_OK: *reply_len is its size in bytes,
 * s->type / s->top_len describe it.  RESP_AGAIN: incomplete, progress kept.
 * RESP_ERR: not valid RESP, s->err says why. */
int resp_scan(resp_scanner *s, const char *buf, size_t len, size_t *reply_len);

#endif
