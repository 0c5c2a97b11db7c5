/* resp_value.c -- see resp_value.h. */
#include "resp/resp_value.h"

#include <string.h>

#include "resp/resp.h"

/* The line at p (up to, not including, "\r\n") within n bytes: its length,
 * or -1 when no CRLF ends it. */
static long line_len(const char *p, size_t n)
{
    const char *cr = memchr(p, '\r', n);
    if (!cr || (size_t)(cr - p) + 1 >= n || cr[1] != '\n') return -1;
    return (long)(cr - p);
}

/* One value's header (and, for bulks, its payload).  For arrays *children
 * gets the element count (0 for nil/empty).  Returns bytes spanned by the
 * header (+ payload), 0 on malformed input. */
static size_t decode_head(const char *p, size_t n, resp_value *out, long long *children)
{
    *children = 0;
    if (n < 3) return 0;
    long l = line_len(p + 1, n - 1);
    if (l < 0) return 0;
    size_t head = (size_t)l + 3;
    memset(out, 0, sizeof *out);
    out->type = p[0];
    switch (p[0]) {
    case '+': case '-':
        out->str = p + 1;
        out->len = (size_t)l;
        return head;
    case ':':
        return resp_parse_ll(p + 1, (size_t)l, &out->integer) ? head : 0;
    case '$': {
        long long blen;
        if (!resp_parse_ll(p + 1, (size_t)l, &blen) || blen < -1) return 0;
        if (blen == -1) {
            out->type = 'n';
            return head;
        }
        if ((unsigned long long)blen + 2 > n - head) return 0;
        if (p[head + blen] != '\r' || p[head + blen + 1] != '\n') return 0;
        out->str = p + head;
        out->len = (size_t)blen;
        return head + (size_t)blen + 2;
    }
    case '*': {
        long long count;
        if (!resp_parse_ll(p + 1, (size_t)l, &count) || count < -1) return 0;
        if (count == -1) {
            out->type = 'n';
            return head;
        }
        out->integer = count;
        out->elems = p + head;
        *children = count;
        return head;
    }
    default:
        return 0;
    }
}

size_t resp_value_decode(const char *p, size_t n, resp_value *out)
{
    long long pending;
    size_t used = decode_head(p, n, out, &pending);
    if (!used) return 0;
    /* walk nested elements with a counter instead of a stack */
    while (pending > 0) {
        resp_value child;
        long long more;
        size_t u = decode_head(p + used, n - used, &child, &more);
        if (!u) return 0;
        used += u;
        pending += more - 1;
    }
    if (out->type == '*') out->elems_len = used - (size_t)(out->elems - p);
    return used;
}

int resp_value_next(const resp_value *array, size_t *pos, resp_value *out)
{
    if (array->type != '*' || *pos >= array->elems_len) return 0;
    size_t used = resp_value_decode(array->elems + *pos, array->elems_len - *pos, out);
    if (!used) return 0;
    *pos += used;
    return 1;
}
