/* repl_mem.h -- allocation for the control-plane modules (health checks,
 * Sentinel, quorum background repair): out of memory is fatal there, as in
 * Redis, so these never return NULL; they print a message and abort. */
#ifndef REPL_MEM_H
#define REPL_MEM_H

#include <stddef.h>

/* calloc of n * size bytes (at least 1). */
void *repl_xcalloc(size_t n, size_t size);

/* A copy of s, or NULL when s is NULL or "" (an optional setting not given). */
char *repl_opt_strdup(const char *s);

/* A NUL-terminated copy of p[0..n). */
char *repl_memdup(const char *p, size_t n);

#endif
