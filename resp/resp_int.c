/* resp_int.c -- the integer rule shared by the request parser and the
 * reply scanner (Redis's string2ll). */
#include "resp/resp.h"

#include <limits.h>

#define LL_MAX_CHARS 20   /* longest integer string2ll accepts: "-9223372036854775808" */

int resp_parse_ll(const char *s, size_t n, long long *out)
{
    unsigned long long v = 0;
    size_t i = 0;
    int neg = 0;

    if (n == 0 || n > LL_MAX_CHARS) return 0;
    if (s[0] == '-') {
        neg = 1;
        i = 1;
        if (n == 1) return 0;
    }
    if (s[i] == '0') {
        if (n != 1) return 0; /* "0" only: no "-0", no leading zeros */
        *out = 0;
        return 1;
    }
    for (; i < n; i++) {
        unsigned d = (unsigned)((unsigned char)s[i] - '0');
        if (d > 9) return 0;
        if (v > (ULLONG_MAX - d) / 10) return 0;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1) return 0;
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    } else {
        if (v > (unsigned long long)LLONG_MAX) return 0;
        *out = (long long)v;
    }
    return 1;
}
