/* Event generator for P1: creates N empty files in DIR, then deletes them,
 * i.e. N FAN_CREATE + N FAN_DELETE events. Usage: gen DIR N
 * Prints {"created":N,"deleted":N,"wall_ms":...}. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: gen DIR N\n"); return 2; }
  long n = atol(argv[2]);
  /* openat/unlinkat on a dir fd: no path walk from / per file, so the
   * generator stays cheap and the consumer is the bottleneck being measured. */
  int dfd = open(argv[1], O_DIRECTORY | O_RDONLY);
  if (dfd < 0) { perror(argv[1]); return 1; }
  char name[32];
  double t0 = now_ms();
  for (long i = 0; i < n; i++) {
    snprintf(name, sizeof name, "f%07ld", i);
    int fd = openat(dfd, name, O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd < 0) { perror(name); return 1; }
    close(fd);
  }
  for (long i = 0; i < n; i++) {
    snprintf(name, sizeof name, "f%07ld", i);
    if (unlinkat(dfd, name, 0) < 0) { perror(name); return 1; }
  }
  printf("{\"created\":%ld,\"deleted\":%ld,\"wall_ms\":%.1f}\n", n, n, now_ms() - t0);
  return 0;
}
