/* fuzz_resp_request.c -- libFuzzer target for the client request parser.
 *
 * Build and run by hand (not part of the meson build):
 *   clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -I../.. \
 *       fuzz_resp_request.c ../../resp/resp_int.c ../../resp/resp_request.c -o fuzz_resp_request
 *   ./fuzz_resp_request -max_total_time=60 -max_len=4096
 *
 * Input: byte 0 chooses the limits, byte 1 the chunk size, the rest is the
 * client's byte stream.  The stream is parsed as a pipeline twice: whole, and
 * delivered `chunk` bytes at a time with every call on a fresh exact-size
 * copy (the buffer moves, reads past len are caught by ASan).  Both runs must
 * see the same requests, arguments and final outcome; any difference traps. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "resp/resp_request.h"

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL; /* FNV-1a */
    return h;
}

/* Parse data[0..size) as a pipeline, `step` more bytes per call; returns a
 * hash of the requests seen and of the final outcome (RESP_AGAIN at the end
 * of the data, or the error).  Intermediate RESP_AGAINs are not hashed: they
 * depend on the chunking. */
static uint64_t run(const uint8_t *data, size_t size, size_t step, uint8_t cfg)
{
    resp_req_parser p;
    uint64_t h = 14695981039346656037ULL;
    size_t start = 0, avail = size < step ? size : step;
    int rc;

    resp_req_init(&p);
    p.unauthenticated = cfg & 1;
    if (cfg & 2) p.max_bulk_len = (cfg >> 4) & 7;
    if (cfg & 4) p.max_multibulk_len = (cfg >> 5) & 3;
    for (;;) {
        size_t n = avail - start;
        char *copy = malloc(n ? n : 1);
        if (copy == NULL) abort();
        if (n) memcpy(copy, data + start, n);
        rc = resp_req_parse(&p, copy, n);
        if (rc == RESP_OK) {
            if (p.req_len == 0 || p.req_len > n) __builtin_trap();
            h = mix(h, &p.req_len, sizeof(p.req_len));
            h = mix(h, &p.argc, sizeof(p.argc));
            for (size_t i = 0; i < p.argc; i++) {
                size_t l;
                const char *a = resp_req_arg(&p, copy, i, &l);
                h = mix(h, &l, sizeof(l));
                h = mix(h, a, l);
            }
            start += p.req_len;
        }
        free(copy);
        if (rc == RESP_OK) continue;
        if (rc == RESP_AGAIN && avail < size) {
            avail = size - avail > step ? avail + step : size;
            continue;
        }
        break;
    }
    h = mix(h, &rc, sizeof(rc));
    if (rc == RESP_ERR) h = mix(h, p.err, strlen(p.err));
    resp_req_free(&p);
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t cfg, chunk;

    if (size < 2) return 0;
    cfg = data[0];
    chunk = data[1] ? data[1] : 1;
    data += 2;
    size -= 2;
    if (run(data, size, SIZE_MAX, cfg) != run(data, size, chunk, cfg)) __builtin_trap();
    return 0;
}
