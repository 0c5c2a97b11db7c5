/* repl_mem.c -- see repl_mem.h. */
#include "replication/repl_mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *repl_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fputs("rcproxy: out of memory (control plane)\n", stderr);
        abort();
    }
    return p;
}

char *repl_opt_strdup(const char *s)
{
    if (!s || !s[0]) return NULL;
    return repl_memdup(s, strlen(s));
}

char *repl_memdup(const char *p, size_t n)
{
    char *d = repl_xcalloc(1, n + 1);
    memcpy(d, p, n);
    return d;
}
