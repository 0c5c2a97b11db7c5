/* buf.h -- growable byte buffer with a read cursor.
 *
 * data[rpos..len) are the bytes not consumed yet.  Capacity grows by doubling
 * to sizes jemalloc serves without waste; px_buf_release() gives the memory
 * back so idle connections hold no buffers. */
#ifndef PX_BUF_H
#define PX_BUF_H

#include <stddef.h>
#include <string.h>

typedef struct px_buf {
    char *data;
    size_t rpos;
    size_t len;
    size_t cap;
} px_buf;

#define PX_BUF_INIT {NULL, 0, 0, 0}

/* Make room for at least `more` bytes after len (never moves data within
 * the buffer: offsets stay valid; compaction is the caller's explicit
 * choice).  Aborts on OOM (a proxy without memory cannot answer anything
 * sensible). */
void px_buf_reserve(px_buf *b, size_t more);
void px_buf_append(px_buf *b, const void *p, size_t n);
void px_buf_append_str(px_buf *b, const char *s);
/* Drop consumed bytes: move data[rpos..len) to the front. */
void px_buf_compact(px_buf *b);
/* Free the memory; the buffer is empty and reusable afterwards. */
void px_buf_release(px_buf *b);

static inline size_t px_buf_unread(const px_buf *b) { return b->len - b->rpos; }
static inline char *px_buf_rptr(const px_buf *b) { return b->data + b->rpos; }
static inline void px_buf_consume(px_buf *b, size_t n)
{
    b->rpos += n;
    if (b->rpos == b->len) b->rpos = b->len = 0;
}

/* RESP writers (append one reply to b). */
void px_buf_add_status(px_buf *b, const char *s);          /* +s\r\n */
void px_buf_add_error(px_buf *b, const char *s);           /* -s\r\n (s includes the code, e.g. "ERR ...") */
void px_buf_add_errorf(px_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void px_buf_add_int(px_buf *b, long long v);                /* :v\r\n */
void px_buf_add_header(px_buf *b, char type, long long n);  /* *n\r\n, $n\r\n ... */
void px_buf_add_bulk(px_buf *b, const void *p, size_t n);  /* $n\r\n...\r\n */
void px_buf_add_bulk_str(px_buf *b, const char *s);
void px_buf_add_null(px_buf *b);                            /* $-1\r\n */
void px_buf_add_multibulk(px_buf *b, int argc, const char **argv, const size_t *lens);

#endif
