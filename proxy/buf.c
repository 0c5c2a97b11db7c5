/* buf.c -- growable byte buffer and RESP reply writers. */
#include "proxy/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define PX_BUF_MIN 1024

void px_buf_reserve(px_buf *b, size_t more)
{
    if (b->cap - b->len >= more) return;
    size_t need = b->len + more;
    size_t cap = b->cap ? b->cap : PX_BUF_MIN;
    while (cap < need) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        fprintf(stderr, "rcproxy: out of memory allocating %zu bytes\n", cap);
        abort();
    }
    b->data = p;
    b->cap = cap;
}

void px_buf_append(px_buf *b, const void *p, size_t n)
{
    if (n == 0) return;
    px_buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void px_buf_append_str(px_buf *b, const char *s) { px_buf_append(b, s, strlen(s)); }

void px_buf_compact(px_buf *b)
{
    if (b->rpos == 0) return;
    size_t n = b->len - b->rpos;
    if (n) memmove(b->data, b->data + b->rpos, n);
    b->len = n;
    b->rpos = 0;
}

void px_buf_release(px_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->rpos = b->len = b->cap = 0;
}

/* Append "<type><s>\r\n" where s must not contain CR or LF (they are
 * replaced by spaces, as Redis does for error strings). */
static void add_line(px_buf *b, char type, const char *s, size_t n)
{
    px_buf_reserve(b, n + 3);
    char *d = b->data + b->len;
    *d++ = type;
    for (size_t i = 0; i < n; i++) d[i] = (s[i] == '\r' || s[i] == '\n') ? ' ' : s[i];
    d += n;
    *d++ = '\r';
    *d++ = '\n';
    b->len += n + 3;
}

void px_buf_add_status(px_buf *b, const char *s) { add_line(b, '+', s, strlen(s)); }
void px_buf_add_error(px_buf *b, const char *s) { add_line(b, '-', s, strlen(s)); }

void px_buf_add_errorf(px_buf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof tmp) n = sizeof tmp - 1;
    add_line(b, '-', tmp, (size_t)n);
}

void px_buf_add_header(px_buf *b, char type, long long v)
{
    /* digits written backwards from the end: no printf on the hot path */
    char tmp[32];
    char *p = tmp + sizeof tmp;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    *--p = '\n';
    *--p = '\r';
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--p = '-';
    *--p = type;
    px_buf_append(b, p, (size_t)(tmp + sizeof tmp - p));
}

void px_buf_add_int(px_buf *b, long long v) { px_buf_add_header(b, ':', v); }

void px_buf_add_bulk(px_buf *b, const void *p, size_t n)
{
    px_buf_reserve(b, n + 32);
    px_buf_add_header(b, '$', (long long)n);
    px_buf_append(b, p, n);
    px_buf_append(b, "\r\n", 2);
}

void px_buf_add_bulk_str(px_buf *b, const char *s) { px_buf_add_bulk(b, s, strlen(s)); }
void px_buf_add_null(px_buf *b) { px_buf_append(b, "$-1\r\n", 5); }

void px_buf_add_multibulk(px_buf *b, int argc, const char **argv, const size_t *lens)
{
    px_buf_add_header(b, '*', argc);
    for (int i = 0; i < argc; i++) px_buf_add_bulk(b, argv[i], lens ? lens[i] : strlen(argv[i]));
}
