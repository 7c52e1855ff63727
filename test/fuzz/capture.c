// Captures real fanotify read() buffers from the running kernel, for the fuzz
// seed corpus (test/fuzz/corpus/). Each file is the exact bytes of one read().
//
//   cc -O1 -o capture test/fuzz/capture.c && ./capture test/fuzz/corpus
//
// Needs root. Runs in a private mount namespace of its own (unshare), so every
// mount it makes (tmpfs, a loop ext4 image) goes away with it, and nothing is
// seen outside. Scenarios, each saved as <scenario>-<n>.bin:
//   fid        FID + DFID_NAME + PIDFD: create, write, chmod, mkdir, unlink, rmdir,
//              long and UTF-8 names, on tmpfs and ext4
//   target     FAN_REPORT_DFID_NAME_TARGET + FAN_RENAME: OLD/NEW_DFID_NAME + FID
//   dfid       FAN_REPORT_DIR_FID alone (DFID records), FAN_REPORT_TID
//   fd         classic fd events (open, access, modify, close), FAN_REPORT_PIDFD
//   xdir       a rename from one directory to another (OLD/NEW_DFID_NAME differ)
//   small-buffer  reads with a 100-byte buffer: one event per read()
//   perm       content class, OPEN_PERM/ACCESS_PERM answered, with PIDFD
//   exec       content class, OPEN_EXEC_PERM answered and OPEN_EXEC
//   pre        pre-content class, FAN_PRE_ACCESS on an ext4 file: RANGE records
//   fserror    FAN_FS_ERROR on a loop ext4 whose inode debugfs corrupted: ERROR records
//   mnt        FAN_REPORT_MNT on this mount namespace: MNT records (attach, detach, move)
//   overflow   a FID group that was not read: the queue overflows (FAN_Q_OVERFLOW)
// Scenarios the kernel refuses are reported and skipped.
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef FAN_FS_ERROR
#define FAN_FS_ERROR 0x00008000
#endif
#ifndef FAN_PRE_ACCESS
#define FAN_PRE_ACCESS 0x00100000
#endif
#ifndef FAN_MNT_ATTACH
#define FAN_MNT_ATTACH 0x01000000
#define FAN_MNT_DETACH 0x02000000
#endif
#ifndef FAN_RENAME
#define FAN_RENAME 0x10000000
#endif
#ifndef FAN_REPORT_PIDFD
#define FAN_REPORT_PIDFD 0x00000080
#endif
#ifndef FAN_REPORT_TARGET_FID
#define FAN_REPORT_TARGET_FID 0x00001000
#endif
#ifndef FAN_REPORT_MNT
#define FAN_REPORT_MNT 0x00004000
#endif
#ifndef FAN_MARK_MNTNS
#define FAN_MARK_MNTNS 0x00000110
#endif
#define INFO_TYPE_PIDFD 4

static const char* outdir;
static char work[256];  // tmpfs scratch dir
static char ext4[256];  // loop ext4 mount point
static char image[300];
static int total;

static void die(const char* what) {
  perror(what);
  exit(1);
}

static void sh(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char* fmt, ...) {
  char cmd[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  if (system(cmd) != 0) {
    fprintf(stderr, "failed: %s\n", cmd);
    exit(1);
  }
}

// Closes the event fds and pidfds a buffer hands us.
static void close_fds(const uint8_t* buf, ssize_t len) {
  const struct fanotify_event_metadata* m = (const void*)buf;
  for (; FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
    if (m->fd >= 0) close(m->fd);
    const uint8_t* r = (const uint8_t*)m + m->metadata_len;
    const uint8_t* end = (const uint8_t*)m + m->event_len;
    while (r + 4 <= end) {
      uint16_t rlen;
      memcpy(&rlen, r + 2, 2);
      if (rlen < 4) break;
      if (r[0] == INFO_TYPE_PIDFD && rlen >= 8) {
        int32_t pidfd;
        memcpy(&pidfd, r + 4, 4);
        if (pidfd >= 0) close(pidfd);
      }
      r += rlen;
    }
  }
}

static void save(const char* scenario, int n, const uint8_t* buf, ssize_t len) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s-%d.bin", outdir, scenario, n);
  FILE* f = fopen(path, "wb");
  if (!f || fwrite(buf, 1, len, f) != (size_t)len || fclose(f) != 0) die(path);
  int events = 0;
  const struct fanotify_event_metadata* m = (const void*)buf;
  ssize_t left = len;
  for (; FAN_EVENT_OK(m, left); m = FAN_EVENT_NEXT(m, left)) events++;
  printf("  %s: %zd bytes, %d events\n", path, len, events);
  total++;
}

// Reads everything queued now (non-blocking group), saving at most `keep`
// buffers; the rest are read and dropped. Returns the buffers read.
static int drain(int fan, const char* scenario, int keep, size_t bufsize) {
  uint8_t* buf = malloc(bufsize);
  int n = 0;
  for (;;) {
    ssize_t len = read(fan, buf, bufsize);
    if (len < 0 && errno == EINTR) continue;
    if (len <= 0) break;
    if (n < keep) save(scenario, n, buf, len);
    close_fds(buf, len);
    n++;
  }
  free(buf);
  return n;
}

// The child that makes the events: it runs fn, then waits on `hold` until the
// parent has read (so that its pidfds are still valid), then exits.
typedef void (*Actions)(void);
static pid_t spawn(Actions fn, int* release) {
  int p[2];
  if (pipe(p) != 0) die("pipe");
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    close(p[1]);
    fn();
    char c;
    ssize_t r = read(p[0], &c, 1);  // parent closes the pipe: we may exit
    (void)r;
    _exit(0);
  }
  close(p[0]);
  *release = p[1];
  return pid;
}

static void finish(pid_t pid, int release) {
  close(release);
  int st;
  waitpid(pid, &st, 0);
}

static int fan_init(const char* scenario, unsigned flags, unsigned fflags) {
  int fd = fanotify_init(flags | FAN_NONBLOCK | FAN_CLOEXEC, fflags);
  if (fd < 0) fprintf(stderr, "%s: fanotify_init(0x%x): %s, skipped\n", scenario, flags, strerror(errno));
  return fd;
}

static int fan_mark(const char* scenario, int fd, unsigned flags, uint64_t mask, int dirfd, const char* path) {
  if (fanotify_mark(fd, FAN_MARK_ADD | flags, mask, dirfd, path) == 0) return 0;
  fprintf(stderr, "%s: fanotify_mark(%s, 0x%llx): %s, skipped\n", scenario, path ? path : "(fd)",
          (unsigned long long)mask, strerror(errno));
  close(fd);
  return -1;
}

static void touch(const char* path, const char* content) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) die(path);
  if (content && write(fd, content, strlen(content)) < 0) die("write");
  close(fd);
}

static char base[256];  // the directory the actions run in (set per scenario)

static void fs_actions(void) {
  char a[512], b[512], d[512], longname[256];
  snprintf(a, sizeof a, "%s/a.txt", base);
  snprintf(b, sizeof b, "%s/b.txt", base);
  snprintf(d, sizeof d, "%s/sub", base);
  touch(a, "hello");
  chmod(a, 0600);
  rename(a, b);
  mkdir(d, 0755);
  rmdir(d);
  memset(longname, 'n', 255);
  longname[255] = 0;
  char lp[600];
  snprintf(lp, sizeof lp, "%s/%s", base, longname);
  touch(lp, NULL);
  unlink(lp);
  snprintf(lp, sizeof lp, "%s/\xc3\xa9t\xc3\xa9 \xe2\x9c\x93.txt", base);  // "été ✓.txt"
  touch(lp, "x");
  unlink(lp);
  unlink(b);
}

static void xdir_actions(void) {
  char d1[512], d2[512], d3[600], a[600], b[700];
  snprintf(d1, sizeof d1, "%s/from", base);
  snprintf(d2, sizeof d2, "%s/to", base);
  snprintf(d3, sizeof d3, "%s/to", d1);
  mkdir(d1, 0755);
  mkdir(d2, 0755);
  snprintf(a, sizeof a, "%s/moved.txt", d1);
  snprintf(b, sizeof b, "%s/arrived.txt", d2);
  touch(a, "m");
  rename(a, b);   // a file from one directory to another
  rename(d2, d3); // a directory into another (FAN_ONDIR)
  snprintf(b, sizeof b, "%s/arrived.txt", d3);
  unlink(b);
  rmdir(d3);
  rmdir(d1);
}

static void fid_scenario_with(const char* scenario, const char* dir, unsigned flags, uint64_t mask,
                              Actions fn, size_t bufsize, int keep);

static void fid_scenario(const char* scenario, const char* dir, unsigned flags, uint64_t mask) {
  fid_scenario_with(scenario, dir, flags, mask, fs_actions, 4096, 3);
}

static void fid_scenario_with(const char* scenario, const char* dir, unsigned flags, uint64_t mask,
                              Actions fn, size_t bufsize, int keep) {
  snprintf(base, sizeof base, "%s", dir);
  int fan = fan_init(scenario, FAN_CLASS_NOTIF | flags, O_RDONLY);
  if (fan < 0) return;
  if (fan_mark(scenario, fan, FAN_MARK_FILESYSTEM, mask, AT_FDCWD, dir) < 0) return;
  int release;
  pid_t pid = spawn(fn, &release);
  usleep(200000);
  drain(fan, scenario, keep, bufsize);
  finish(pid, release);
  close(fan);
}

static void fd_actions(void) {
  for (int i = 0; i < 3; i++) {
    char a[512];
    snprintf(a, sizeof a, "%s/data%d.txt", base, i);
    touch(a, "some content");
    int fd = open(a, O_RDONLY);
    char c[4];
    if (read(fd, c, sizeof c) < 0) die("read");
    close(fd);
    unlink(a);
  }
}

// reaped: the child is gone before the read, so its pidfd is FAN_EPIDFD.
static void fd_scenario(const char* scenario, unsigned flags, int reaped) {
  snprintf(base, sizeof base, "%s", work);
  int fan = fan_init(scenario, FAN_CLASS_NOTIF | flags, O_RDONLY | O_LARGEFILE);
  if (fan < 0) return;
  if (fan_mark(scenario, fan, 0, FAN_OPEN | FAN_ACCESS | FAN_MODIFY | FAN_CLOSE | FAN_EVENT_ON_CHILD,
               AT_FDCWD, work) < 0)
    return;
  int release;
  pid_t pid = spawn(fd_actions, &release);
  usleep(200000);
  if (reaped) finish(pid, release);
  drain(fan, scenario, 2, 4096);
  if (!reaped) finish(pid, release);
  close(fan);
}

// Permission groups: the parent answers every permission event while the child
// runs; the first buffers are saved.
static void answer_loop(int fan, const char* scenario, pid_t pid, int release, int keep) {
  uint8_t buf[4096];
  int n = 0, idle = 0;
  for (;;) {
    struct pollfd p = {fan, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) {
      // The child is done when it waits on the pipe: nothing new for 0.3 s.
      if (++idle > 6) break;
      continue;
    }
    idle = 0;
    ssize_t len = read(fan, buf, sizeof buf);
    if (len <= 0) continue;
    if (n < keep) save(scenario, n, buf, len);
    n++;
    const struct fanotify_event_metadata* m = (const void*)buf;
    ssize_t left = len;
    for (; FAN_EVENT_OK(m, left); m = FAN_EVENT_NEXT(m, left)) {
      if (m->fd >= 0 && (m->mask & (FAN_OPEN_PERM | FAN_ACCESS_PERM | FAN_OPEN_EXEC_PERM | FAN_PRE_ACCESS))) {
        struct fanotify_response r = {m->fd, FAN_ALLOW};
        if (write(fan, &r, sizeof r) < 0) perror("response");
      }
    }
    close_fds(buf, len);
  }
  finish(pid, release);
}

static void perm_actions(void) {
  char a[512];
  snprintf(a, sizeof a, "%s/perm.txt", base);
  for (int i = 0; i < 3; i++) {
    int fd = open(a, O_RDONLY);
    char c[4];
    if (fd < 0 || read(fd, c, sizeof c) < 0) die("perm read");
    close(fd);
  }
}

static void perm_scenario(void) {
  const char* scenario = "perm";
  snprintf(base, sizeof base, "%s", work);
  char a[512];
  snprintf(a, sizeof a, "%s/perm.txt", work);
  touch(a, "permission");
  int fan = fan_init(scenario, FAN_CLASS_CONTENT | FAN_REPORT_PIDFD, O_RDONLY);
  if (fan < 0) return;
  if (fan_mark(scenario, fan, 0, FAN_OPEN_PERM | FAN_ACCESS_PERM | FAN_EVENT_ON_CHILD, AT_FDCWD,
               work) < 0)
    return;
  int release;
  pid_t pid = spawn(perm_actions, &release);
  answer_loop(fan, scenario, pid, release, 3);
  close(fan);
}

static void exec_actions(void) {
  char a[512];
  snprintf(a, sizeof a, "%s/true", base);
  pid_t pid = fork();
  if (pid == 0) {
    execl(a, "true", (char*)NULL);
    _exit(127);
  }
  int st;
  waitpid(pid, &st, 0);
}

static void exec_scenario(void) {
  const char* scenario = "exec";
  snprintf(base, sizeof base, "%s", work);
  sh("cp /bin/true '%s/true'", work);
  int fan = fan_init(scenario, FAN_CLASS_CONTENT | FAN_REPORT_PIDFD, O_RDONLY);
  if (fan < 0) return;
  if (fan_mark(scenario, fan, 0, FAN_OPEN_EXEC_PERM | FAN_OPEN_EXEC | FAN_EVENT_ON_CHILD, AT_FDCWD, work) < 0)
    return;
  int release;
  pid_t pid = spawn(exec_actions, &release);
  answer_loop(fan, scenario, pid, release, 2);
  close(fan);
}

static void pre_actions(void) {
  char a[512];
  snprintf(a, sizeof a, "%s/big.bin", base);
  int fd = open(a, O_RDONLY);
  if (fd < 0) die("pre open");
  char c[4096];
  if (pread(fd, c, 100, 0) < 0 || pread(fd, c, 4096, 8192) < 0 || pread(fd, c, 10, 65000) < 0)
    die("pre read");
  close(fd);
}

static void pre_scenario(void) {
  const char* scenario = "pre";
  snprintf(base, sizeof base, "%s", ext4);
  char a[512];
  snprintf(a, sizeof a, "%s/big.bin", ext4);
  sh("head -c 70000 /dev/urandom > '%s'", a);
  int fan = fan_init(scenario, FAN_CLASS_PRE_CONTENT | FAN_REPORT_PIDFD, O_RDONLY);
  if (fan < 0) return;
  if (fan_mark(scenario, fan, 0, FAN_PRE_ACCESS | FAN_OPEN_PERM, AT_FDCWD, a) < 0) return;
  int release;
  pid_t pid = spawn(pre_actions, &release);
  answer_loop(fan, scenario, pid, release, 3);
  close(fan);
}

static void stat_victim(void) {
  char a[512];
  struct stat st;
  snprintf(a, sizeof a, "%s/victim", base);
  for (int i = 0; i < 3; i++) stat(a, &st);  // EFSCORRUPTED; the fs records an error
  snprintf(a, sizeof a, "%s/victim2", base);
  stat(a, &st);
}

static void fserror_scenario(void) {
  const char* scenario = "fserror";
  char a[512];
  snprintf(a, sizeof a, "%s/victim", ext4);
  touch(a, "v");
  snprintf(a, sizeof a, "%s/victim2", ext4);
  touch(a, "w");
  sh("umount '%s'", ext4);
  sh("debugfs -w -R 'sif /victim mode 0xff' '%s' >/dev/null 2>&1", image);
  sh("debugfs -w -R 'sif /victim2 links_count 0' '%s' >/dev/null 2>&1", image);
  sh("mount -o loop,errors=continue '%s' '%s'", image, ext4);
  snprintf(base, sizeof base, "%s", ext4);
  int fan = fan_init(scenario, FAN_CLASS_NOTIF | FAN_REPORT_FID, O_RDONLY);
  if (fan < 0) return;
  if (fan_mark(scenario, fan, FAN_MARK_FILESYSTEM, FAN_FS_ERROR, AT_FDCWD, ext4) < 0) return;
  int release;
  pid_t pid = spawn(stat_victim, &release);
  usleep(300000);
  drain(fan, scenario, 2, 4096);
  // A second error after the first was read: a new event, error_count 1 again.
  finish(pid, release);
  pid = spawn(stat_victim, &release);
  usleep(300000);
  int got = drain(fan, "fserror-again", 1, 4096);
  (void)got;
  finish(pid, release);
  close(fan);
}

static void mnt_scenario(void) {
  const char* scenario = "mnt";
  int fan = fan_init(scenario, FAN_CLASS_NOTIF | FAN_REPORT_MNT, 0);
  if (fan < 0) return;
  int ns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
  if (ns < 0) die("ns");
  if (fan_mark(scenario, fan, FAN_MARK_MNTNS, FAN_MNT_ATTACH | FAN_MNT_DETACH, ns, NULL) < 0) return;
  char m1[512], m2[512];
  snprintf(m1, sizeof m1, "%s/m1", work);
  snprintf(m2, sizeof m2, "%s/m2", work);
  mkdir(m1, 0755);
  mkdir(m2, 0755);
  if (mount("none", m1, "tmpfs", 0, "size=1m") != 0) die("mount m1");
  if (mount(m1, m2, NULL, MS_BIND, NULL) != 0) die("bind m2");
  if (umount2(m2, 0) != 0) die("umount m2");
  char m3[512];
  snprintf(m3, sizeof m3, "%s/m3", work);
  mkdir(m3, 0755);
  if (mount(m1, m3, NULL, MS_MOVE, NULL) != 0) die("move");  // attach + detach in one event
  if (umount2(m3, 0) != 0) die("umount m3");
  drain(fan, scenario, 2, 4096);
  close(ns);
  close(fan);
}

static void many_creates(void) {
  char p[512];
  for (int i = 0; i < 17000; i++) {
    snprintf(p, sizeof p, "%s/f%d", base, i);
    int fd = open(p, O_WRONLY | O_CREAT, 0644);
    if (fd >= 0) close(fd);
  }
}

static void overflow_scenario(void) {
  const char* scenario = "overflow";
  char d[200];
  snprintf(d, sizeof d, "%.150s/many", work);
  mkdir(d, 0755);
  snprintf(base, sizeof base, "%s", d);
  int fan = fan_init(scenario, FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME, 0);
  if (fan < 0) return;
  if (fan_mark(scenario, fan, 0, FAN_CREATE | FAN_EVENT_ON_CHILD, AT_FDCWD, d) < 0) return;
  int release;
  pid_t pid = spawn(many_creates, &release);
  int st;
  finish(pid, release);
  (void)st;
  // Keep the first buffer and the one holding the overflow event (the last).
  uint8_t buf[4096], last[4096];
  ssize_t last_len = 0;
  int n = 0;
  for (;;) {
    ssize_t len = read(fan, buf, sizeof buf);
    if (len <= 0) break;
    if (n++ == 0) save(scenario, 0, buf, len);
    memcpy(last, buf, len);
    last_len = len;
  }
  if (last_len > 0) save(scenario, 1, last, last_len);
  close(fan);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
    return 2;
  }
  outdir = argv[1];
  if (geteuid() != 0) {
    fprintf(stderr, "needs root\n");
    return 1;
  }
  // A mount namespace of our own: every mount below vanishes with us.
  if (unshare(CLONE_NEWNS) != 0) die("unshare");
  if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) die("make / private");
  char tmpl[] = "/tmp/fanotify-capture-XXXXXX";
  char* root = mkdtemp(tmpl);
  if (!root) die("mkdtemp");
  snprintf(work, sizeof work, "%s/tmpfs", root);
  snprintf(ext4, sizeof ext4, "%s/ext4", root);
  snprintf(image, sizeof image, "%s/ext4.img", root);
  mkdir(work, 0755);
  mkdir(ext4, 0755);
  if (mount("none", work, "tmpfs", 0, "size=64m") != 0) die("mount tmpfs");
  sh("truncate -s 32M '%s' && mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 '%s'", image,
     image);
  sh("mount -o loop,errors=continue '%s' '%s'", image, ext4);

  uint64_t fs_mask = FAN_CREATE | FAN_DELETE | FAN_MODIFY | FAN_ATTRIB | FAN_CLOSE_WRITE | FAN_MOVED_FROM |
                     FAN_MOVED_TO | FAN_DELETE_SELF | FAN_MOVE_SELF | FAN_ONDIR;
  puts("fid");
  fid_scenario("fid-tmpfs", work, FAN_REPORT_DFID_NAME | FAN_REPORT_FID | FAN_REPORT_PIDFD, fs_mask);
  fid_scenario("fid-ext4", ext4, FAN_REPORT_DFID_NAME | FAN_REPORT_FID | FAN_REPORT_PIDFD, fs_mask);
  puts("target");
  fid_scenario("target", ext4, FAN_REPORT_DFID_NAME_TARGET, fs_mask | FAN_RENAME);
  fid_scenario("rename", work, FAN_REPORT_DFID_NAME, FAN_RENAME | FAN_ONDIR);
  fid_scenario_with("xdir", work, FAN_REPORT_DFID_NAME_TARGET, fs_mask | FAN_RENAME, xdir_actions, 4096, 2);
  // A read() buffer that holds only the first event or two: the kernel never splits one.
  fid_scenario_with("small-buffer", ext4, FAN_REPORT_DFID_NAME | FAN_REPORT_FID, fs_mask, fs_actions, 100, 2);
  puts("dfid");
  fid_scenario("dfid", work, FAN_REPORT_DIR_FID | FAN_REPORT_TID, fs_mask);
  fid_scenario("fidonly", ext4, FAN_REPORT_FID, FAN_MODIFY | FAN_ATTRIB | FAN_CLOSE_WRITE | FAN_DELETE_SELF);
  puts("fd");
  fd_scenario("fd", FAN_REPORT_PIDFD, 0);
  fd_scenario("fd-reaped", FAN_REPORT_PIDFD, 1);
  fd_scenario("fd-tid", FAN_REPORT_TID, 0);
  puts("perm");
  perm_scenario();
  puts("exec");
  exec_scenario();
  puts("pre");
  pre_scenario();
  puts("fserror");
  fserror_scenario();
  puts("mnt");
  mnt_scenario();
  puts("overflow");
  overflow_scenario();

  umount2(ext4, MNT_DETACH);  // loop mounts are autoclear: the device detaches
  umount2(work, MNT_DETACH);
  sh("rm -rf '%s'", root);
  printf("%d buffers saved in %s\n", total, outdir);
  return 0;
}
