/* resp_value.h -- a view of one complete RESP2 reply, for the few places
 * that must look inside a backend reply (mode quorum reads versions out of
 * its scripts' replies).  The reply's boundary has already been found by
 * resp_scanner, so decoding never waits for more bytes; it allocates
 * nothing and points into the caller's bytes.
 *
 *   "*2\r\n:1\r\n$3\r\nabc\r\n"  -> type '*', count 2, elems -> ":1\r\n$3..."
 *   resp_value_next() then walks the elements one by one (nested arrays are
 *   skipped as a whole and can be walked the same way). */
#ifndef RESP_VALUE_H
#define RESP_VALUE_H

#include <stddef.h>

typedef struct resp_value {
    char type;           /* '+' '-' ':' '$' '*', or 'n' for a nil ($-1 / *-1) */
    long long integer;   /* ':' the number; '*' the element count */
    const char *str;     /* '+' '-' '$': the bytes (not NUL-terminated) */
    size_t len;
    const char *elems;   /* '*': the first element */
    size_t elems_len;    /* '*': bytes from elems to the end of the array */
} resp_value;

/* Decode the value at p[0..n).  Returns the bytes it spans, or 0 when p does
 * not start with one complete, well-formed RESP2 value (out is then
 * undefined).  Arrays are measured (every nested element checked) without
 * recursion. */
size_t resp_value_decode(const char *p, size_t n, resp_value *out);

/* Iterator over an array's elements: *pos starts at 0.  Writes the next
 * element to out and returns 1, or 0 at the end or on malformed bytes. */
int resp_value_next(const resp_value *array, size_t *pos, resp_value *out);

#endif
