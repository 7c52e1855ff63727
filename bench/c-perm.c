/* P2 reference permission consumer in plain C. Usage: c-perm DIR
 * FAN_CLASS_CONTENT group, inode mark on DIR for FAN_OPEN_PERM|FAN_EVENT_ON_CHILD;
 * answers FAN_ALLOW to everything, as fast as it can, until SIGTERM/SIGINT.
 * Prints "ready" once marked and {"answered":N,"cpu_us":...} on exit. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>
#include "fan-compat.h"

static volatile sig_atomic_t stop;
static void on_sig(int s) { (void)s; stop = 1; }

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: c-perm DIR\n"); return 2; }
  /* No SA_RESTART: the signal must interrupt the blocking read(). */
  struct sigaction sa = { .sa_handler = on_sig };
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  int fan = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC, O_RDONLY);
  if (fan < 0) { perror("fanotify_init"); return 1; }
  if (fanotify_mark(fan, FAN_MARK_ADD, FAN_OPEN_PERM | FAN_EVENT_ON_CHILD, AT_FDCWD, argv[1]) < 0) {
    perror("fanotify_mark"); return 1;
  }
  printf("ready\n");
  fflush(stdout);
  static _Alignas(8) char buf[64 * 1024];
  long answered = 0;
  while (!stop) {
    ssize_t n = read(fan, buf, sizeof buf);
    if (n < 0) { if (errno == EINTR) continue; perror("read"); return 1; }
    char *p = buf, *end = buf + n;
    while (end - p >= (ssize_t)sizeof(struct fanotify_event_metadata)) {
      struct fanotify_event_metadata *m = (void *)p;
      if (m->event_len < m->metadata_len || m->event_len > end - p) break;
      if (m->fd >= 0) {
        if (m->mask & FAN_OPEN_PERM) {
          struct fanotify_response r = { .fd = m->fd, .response = FAN_ALLOW };
          if (write(fan, &r, sizeof r) != sizeof r) perror("write response");
          answered++;
        }
        close(m->fd);  /* after the answer: the answer names the fd */
      }
      p += m->event_len;
    }
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"answered\":%ld,\"cpu_us\":%.0f}\n", answered,
         (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  return 0;
}
