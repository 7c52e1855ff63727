// read-tree DIR [BUF_KIB]: reads every regular file under DIR (depth first, in
// readdir order, symlinks not followed) with read() into one buffer (default
// 1024 KiB) and throws the bytes away. Used by scripts/bench-hsm.js as the
// reader of a plain tree and of a tree served by serveContent(): it must run
// in a process other than the server's, whose own reads are not served.
//
// Prints one JSON line: {"files":N,"bytes":B,"ns":T}, T being the time of the
// walk alone (CLOCK_MONOTONIC, process start-up not included). Any error
// (EIO from a stub that could not be served, a short read) is printed on
// stderr and ends the walk with exit code 1.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char *buf;
static size_t bufSize;
static long long files, bytes;

static int one(const char *p, const struct stat *st, int type, struct FTW *ftw) {
  (void)ftw;
  if (type != FTW_F || !S_ISREG(st->st_mode)) return 0;
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "read-tree: open %s: %s\n", p, strerror(errno));
    return 1;
  }
  long long got = 0;
  for (;;) {
    ssize_t n = read(fd, buf, bufSize);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      fprintf(stderr, "read-tree: read %s at %lld: %s\n", p, got, strerror(errno));
      close(fd);
      return 1;
    }
    if (n == 0) break;
    got += n;
  }
  close(fd);
  if (got != st->st_size) {
    fprintf(stderr, "read-tree: %s: read %lld bytes, size %lld\n", p, got, (long long)st->st_size);
    return 1;
  }
  files++;
  bytes += got;
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: read-tree DIR [BUF_KIB]\n");
    return 2;
  }
  bufSize = (argc == 3 ? (size_t)atol(argv[2]) : 1024) * 1024;
  if (bufSize == 0 || !(buf = malloc(bufSize))) return 2;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  int rc = nftw(argv[1], one, 64, FTW_PHYS);
  clock_gettime(CLOCK_MONOTONIC, &b);
  if (rc != 0) {
    if (rc < 0) fprintf(stderr, "read-tree: walk %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  long long ns = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
  printf("{\"files\":%lld,\"bytes\":%lld,\"ns\":%lld}\n", files, bytes, ns);
  return 0;
}
