/* P2 load: opens and closes FILE M times and reports the mean latency.
 * Usage: open-loop FILE M   Prints {"opens":M,"ns_per_open":...}.
 * Each open() under an FAN_OPEN_PERM mark blocks until the consumer answers,
 * so the per-open time includes one full kernel -> consumer -> kernel round trip. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: open-loop FILE M\n"); return 2; }
  long m = atol(argv[2]);
  /* Warm-up (dentry cache, consumer's first-event costs such as JIT) stays out of the timing. */
  for (long i = 0; i < m / 10 + 1; i++) {
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror(argv[1]); return 1; }
    close(fd);
  }
  double t0 = now_ns();
  for (long i = 0; i < m; i++) {
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror(argv[1]); return 1; }
    close(fd);
  }
  printf("{\"opens\":%ld,\"ns_per_open\":%.0f}\n", m, (now_ns() - t0) / m);
  return 0;
}
