/* Load for the P2 scaling benchmark (scripts/bench-scaling.js): one of several
 * concurrent openers. Usage: scaling-open-loop FILE SECONDS [WARMUP]
 *
 * Opens and closes FILE WARMUP times (default 1000; untimed: dentry cache,
 * the consumer's first-event costs such as JIT), prints "ready", waits for a
 * line on stdin (so the harness starts every opener at the same moment), then
 * opens and closes FILE for SECONDS, timing every open+close pair. Prints
 * {"opens","ns_mean","ns_p50","ns_p90","ns_p99","ns_max","start_ns","end_ns"}
 * with CLOCK_MONOTONIC start/end, the same clock in every process, so the
 * harness can compute the combined throughput of all openers.
 *
 * Unlike open-loop.c (P2), which runs a fixed number of opens, this one runs
 * for a fixed time: with several openers they all overlap for the whole
 * measurement. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: scaling-open-loop FILE SECONDS [WARMUP]\n"); return 2; }
  double seconds = atof(argv[2]);
  long warmup = argc > 3 ? atol(argv[3]) : 1000;
  for (long i = 0; i < warmup; i++) {
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror(argv[1]); return 1; }
    close(fd);
  }
  size_t cap = 1 << 20, n = 0;
  uint32_t *lat = malloc(cap * sizeof *lat);
  if (!lat) { perror("malloc"); return 1; }
  printf("ready\n");
  fflush(stdout);
  char line[16];
  if (!fgets(line, sizeof line, stdin)) return 1;

  int64_t start = now_ns(), stop = start + (int64_t)(seconds * 1e9), t = start;
  while (t < stop) {
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror(argv[1]); return 1; }
    close(fd);
    int64_t t2 = now_ns();
    if (n == cap) {
      cap *= 2;
      uint32_t *p = realloc(lat, cap * sizeof *lat);
      if (!p) { perror("realloc"); return 1; }
      lat = p;
    }
    int64_t d = t2 - t;
    lat[n++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
    t = t2;
  }
  int64_t end = t;
  qsort(lat, n, sizeof *lat, cmp_u32);
#define PCT(p) (n ? lat[(size_t)((n - 1) * (p))] : 0)
  printf("{\"opens\":%zu,\"ns_mean\":%.0f,\"ns_p50\":%u,\"ns_p90\":%u,\"ns_p99\":%u,\"ns_max\":%u,"
         "\"start_ns\":%lld,\"end_ns\":%lld}\n",
         n, n ? (double)(end - start) / n : 0.0, PCT(0.5), PCT(0.9), PCT(0.99), n ? lat[n - 1] : 0,
         (long long)start, (long long)end);
  return 0;
}
