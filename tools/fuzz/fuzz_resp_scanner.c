/* fuzz_resp_scanner.c -- libFuzzer target for the reply boundary scanner.
 *
 * Build and run by hand (not part of the meson build):
 *   clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -I../.. \
 *       fuzz_resp_scanner.c ../../resp/resp_int.c ../../resp/resp_scanner.c -o fuzz_resp_scanner
 *   ./fuzz_resp_scanner -max_total_time=60 -max_len=4096
 *
 * Input: byte 0 chooses the limits, byte 1 the chunk size, the rest is the
 * backend's byte stream.  It is scanned as a pipeline of replies twice:
 * whole, and delivered `chunk` bytes at a time with every call on a fresh
 * exact-size copy.  Both runs must find the same reply boundaries, types and
 * final outcome; any difference traps. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "resp/resp_scanner.h"

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL; /* FNV-1a */
    return h;
}

/* Scan data[0..size) as a pipeline, `step` more bytes per call; returns a
 * hash of the replies found and of the final outcome. */
static uint64_t run(const uint8_t *data, size_t size, size_t step, uint8_t cfg)
{
    resp_scanner s;
    uint64_t h = 14695981039346656037ULL;
    size_t start = 0, avail = size < step ? size : step;
    int rc;

    resp_scanner_init(&s);
    if (cfg & 1) s.max_depth = (cfg >> 1) & 7;
    if (cfg & 16) s.max_bulk_len = (cfg >> 5) & 7;
    for (;;) {
        size_t n = avail - start, len = 0;
        char *copy = malloc(n ? n : 1);
        if (copy == NULL) abort();
        if (n) memcpy(copy, data + start, n);
        rc = resp_scan(&s, copy, n, &len);
        free(copy);
        if (rc == RESP_OK) {
            if (len == 0 || len > n) __builtin_trap();
            h = mix(h, &len, sizeof(len));
            h = mix(h, &s.type, sizeof(s.type));
            h = mix(h, &s.top_len, sizeof(s.top_len));
            start += len;
            continue;
        }
        if (rc == RESP_AGAIN && avail < size) {
            avail = size - avail > step ? avail + step : size;
            continue;
        }
        break;
    }
    h = mix(h, &rc, sizeof(rc));
    if (rc == RESP_ERR) h = mix(h, s.err, strlen(s.err));
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
