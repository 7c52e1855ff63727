/* P1 reference consumer in plain C. Usage: c-consumer MOUNTPOINT N [--backlog]
 * Same group as the JS consumer: FAN_CLASS_NOTIF | FAN_REPORT_FID |
 * FAN_REPORT_DFID_NAME | FAN_UNLIMITED_QUEUE, a filesystem mark for
 * FAN_CREATE|FAN_DELETE. Prints "ready" once marked, then counts events
 * until N have been seen (with --backlog it first waits for a line on stdin,
 * so the harness can fill the kernel queue before the clock starts), then
 * prints {"events","records","cpu_us","wall_ms"}.
 *
 * "events" counts event bits (CREATE and DELETE separately): the kernel may
 * merge a create and a delete of the same name still queued into one record
 * with both bits, so counting records could never reach N. "records" is the
 * number of event records actually read and decoded. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include "fan-compat.h"

struct info_hdr { uint8_t type, pad; uint16_t len; };

static double cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}
static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: c-consumer MOUNTPOINT N [--backlog]\n"); return 2; }
  long want = atol(argv[2]);
  int fan = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_UNLIMITED_QUEUE |
                          FAN_REPORT_FID | FAN_REPORT_DIR_FID | FAN_REPORT_NAME, O_RDONLY);
  if (fan < 0) { perror("fanotify_init"); return 1; }
  if (fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_CREATE | FAN_DELETE,
                    AT_FDCWD, argv[1]) < 0) { perror("fanotify_mark"); return 1; }

  static _Alignas(8) char buf[64 * 1024];
  long events = 0, records = 0, malformed = 0;
  uint64_t sink = 0;  /* folds in what we decode, printed so nothing is optimized away */
  printf("ready\n");
  fflush(stdout);
  if (argc > 3 && strcmp(argv[3], "--backlog") == 0) {
    char line[16];
    if (!fgets(line, sizeof line, stdin)) return 1;
  }
  double c0 = cpu_us(), t0 = now_ms();

  while (events < want) {
    ssize_t n = read(fan, buf, sizeof buf);
    if (n < 0) { if (errno == EINTR) continue; perror("read"); return 1; }
    char *p = buf, *end = buf + n;
    while (end - p >= (ssize_t)sizeof(struct fanotify_event_metadata)) {
      struct fanotify_event_metadata *m = (void *)p;
      if (m->event_len < m->metadata_len || m->event_len > end - p) { malformed++; break; }
      records++;
      events += __builtin_popcountll(m->mask & (FAN_CREATE | FAN_DELETE));
      if (m->mask & FAN_Q_OVERFLOW) { fprintf(stderr, "overflow\n"); return 1; }
      if (m->fd >= 0) close(m->fd);  /* never with FID reporting, but be correct */
      /* Walk the info records, bounds-checked like the library's parser. */
      char *r = p + m->metadata_len, *rend = p + m->event_len;
      while (rend - r >= (ssize_t)sizeof(struct info_hdr)) {
        struct info_hdr *h = (void *)r;
        if (h->len < sizeof *h || h->len > rend - r) { malformed++; break; }
        if ((h->type == FAN_EVENT_INFO_TYPE_DFID_NAME || h->type == FAN_EVENT_INFO_TYPE_FID ||
             h->type == FAN_EVENT_INFO_TYPE_DFID) && h->len >= 4 + 8 + 8) {
          uint32_t fsid0, fsid1, hbytes; int32_t htype;
          memcpy(&fsid0, r + 4, 4); memcpy(&fsid1, r + 8, 4);
          memcpy(&hbytes, r + 12, 4); memcpy(&htype, r + 16, 4);
          const unsigned char *fh = (const unsigned char *)r + 20;
          if (hbytes > (uint32_t)(h->len - 20)) { malformed++; break; }
          if (h->type == FAN_EVENT_INFO_TYPE_DFID_NAME) {
            /* the JS consumer reads ev.dir.{fsid,handle,name}: do the same work */
            unsigned char handle[128];
            memcpy(handle, fh, hbytes < sizeof handle ? hbytes : sizeof handle);
            const char *name = (const char *)fh + hbytes;
            size_t nlen = strnlen(name, h->len - 20 - hbytes);
            sink += fsid0 ^ fsid1 ^ (uint32_t)htype ^ handle[0] ^ nlen;
          }
        }
        r += h->len;
      }
      p += m->event_len;
    }
  }
  double cpu = cpu_us() - c0, wall = now_ms() - t0;
  printf("{\"events\":%ld,\"records\":%ld,\"malformed\":%ld,\"cpu_us\":%.0f,\"wall_ms\":%.1f,\"sink\":%llu}\n",
         events, records, malformed, cpu, wall, (unsigned long long)sink);
  return 0;
}
