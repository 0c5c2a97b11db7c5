/* resp.h -- shared definitions of the RESP protocol module.
 *
 * resp/ knows the wire format only: it does no I/O, owns no sockets and
 * never allocates per request on the hot path.  See resp_request.h (client
 * requests) and resp_scanner.h (backend replies). */
#ifndef RESP_H
#define RESP_H

#include <stddef.h>

/* Return codes of every resp_* parse/scan function. */
enum {
    RESP_OK = 0,     /* one complete unit was parsed */
    RESP_AGAIN = 1,  /* input ends inside a unit: call again with more bytes */
    RESP_ERR = -1    /* malformed input; the error is sticky, see ->err */
};

/* Protocol limits, Redis's defaults. */
#define RESP_DEFAULT_MAX_BULK_LEN (512LL * 1024 * 1024)  /* proto-max-bulk-len */
#define RESP_DEFAULT_MAX_MULTIBULK_LEN 2147483647LL       /* INT_MAX, as Redis 7 */
#define RESP_MAX_INLINE_LEN (64 * 1024)                   /* PROTO_INLINE_MAX_SIZE */
#define RESP_UNAUTH_MAX_MULTIBULK_LEN 10                  /* before AUTH, as Redis */
#define RESP_UNAUTH_MAX_BULK_LEN 16384                    /* before AUTH, as Redis */
#define RESP_DEFAULT_MAX_DEPTH 128                        /* reply nesting depth */
#define RESP_ERR_MAX 128                                  /* size of error buffers */

/* Parse s[0..n) as a RESP length/integer the way Redis's string2ll does:
 * optional '-', digits only, no leading zeros, no "-0", within long long.
 * Returns 1 and sets *out, or 0 if the text is not such an integer. */
int resp_parse_ll(const char *s, size_t n, long long *out);

#endif
