// The parts of <linux/fanotify.h> (up to Linux 6.18) that older distribution
// headers lack. Debian 12 ships 6.1 headers, so everything newer is defined here.
#pragma once

#include <linux/fanotify.h>
#include <linux/types.h>
#include <unistd.h>  // defines __GLIBC__ on glibc

// fanotify_init() and fanotify_mark() come from the C library. glibc's
// <sys/fanotify.h> includes <linux/fanotify.h>; musl's defines the same
// structs again, which clashes with it, so elsewhere only the two functions
// are declared, as musl declares them.
#if defined(__GLIBC__)
#include <sys/fanotify.h>
#else
#ifdef __cplusplus
extern "C" {
#endif
int fanotify_init(unsigned flags, unsigned event_f_flags);
int fanotify_mark(int fd, unsigned flags, unsigned long long mask, int dirfd, const char* pathname);
#ifdef __cplusplus
}
#endif
#endif

// Events
#ifndef FAN_FS_ERROR
#define FAN_FS_ERROR 0x00008000
#endif
#ifndef FAN_PRE_ACCESS
#define FAN_PRE_ACCESS 0x00100000
#endif
#ifndef FAN_MNT_ATTACH
#define FAN_MNT_ATTACH 0x01000000
#endif
#ifndef FAN_MNT_DETACH
#define FAN_MNT_DETACH 0x02000000
#endif
#ifndef FAN_RENAME
#define FAN_RENAME 0x10000000
#endif

// fanotify_init flags
#ifndef FAN_REPORT_PIDFD
#define FAN_REPORT_PIDFD 0x00000080
#endif
#ifndef FAN_REPORT_TARGET_FID
#define FAN_REPORT_TARGET_FID 0x00001000
#endif
#ifndef FAN_REPORT_FD_ERROR
#define FAN_REPORT_FD_ERROR 0x00002000
#endif
#ifndef FAN_REPORT_MNT
#define FAN_REPORT_MNT 0x00004000
#endif

// fanotify_mark flags
#ifndef FAN_MARK_EVICTABLE
#define FAN_MARK_EVICTABLE 0x00000200
#endif
#ifndef FAN_MARK_IGNORE
#define FAN_MARK_IGNORE 0x00000400
#endif
#ifndef FAN_MARK_MNTNS
#define FAN_MARK_MNTNS 0x00000110
#endif

// Info record types
#ifndef FAN_EVENT_INFO_TYPE_PIDFD
#define FAN_EVENT_INFO_TYPE_PIDFD 4
#endif
#ifndef FAN_EVENT_INFO_TYPE_ERROR
#define FAN_EVENT_INFO_TYPE_ERROR 5
#endif
#ifndef FAN_EVENT_INFO_TYPE_RANGE
#define FAN_EVENT_INFO_TYPE_RANGE 6
#endif
#ifndef FAN_EVENT_INFO_TYPE_MNT
#define FAN_EVENT_INFO_TYPE_MNT 7
#endif
#ifndef FAN_EVENT_INFO_TYPE_OLD_DFID_NAME
#define FAN_EVENT_INFO_TYPE_OLD_DFID_NAME 10
#endif
#ifndef FAN_EVENT_INFO_TYPE_NEW_DFID_NAME
#define FAN_EVENT_INFO_TYPE_NEW_DFID_NAME 12
#endif

// Responses
#ifndef FAN_INFO
#define FAN_INFO 0x20
#endif
#ifndef FAN_RESPONSE_INFO_AUDIT_RULE
#define FAN_RESPONSE_INFO_NONE 0
#define FAN_RESPONSE_INFO_AUDIT_RULE 1
#endif
#ifndef FAN_ERRNO_BITS
#define FAN_ERRNO_BITS 8
#define FAN_ERRNO_SHIFT (32 - FAN_ERRNO_BITS)
#define FAN_ERRNO_MASK ((1 << FAN_ERRNO_BITS) - 1)
#define FAN_DENY_ERRNO(err) (FAN_DENY | ((((__u32)(err)) & FAN_ERRNO_MASK) << FAN_ERRNO_SHIFT))
#endif

// Record layouts. The kernel writes them naturally aligned; we never cast a
// buffer pointer to these (records may sit at any offset), we only use their
// offsets and sizes.
namespace fan {

struct InfoHeader {
  __u8 info_type;
  __u8 pad;
  __u16 len;
};

struct InfoFid {        // FID, DFID, DFID_NAME, OLD_DFID_NAME, NEW_DFID_NAME
  InfoHeader hdr;
  __s32 fsid[2];
  // struct file_handle { u32 handle_bytes; s32 handle_type; u8 f_handle[]; }
  // then, for the *_NAME types, a NUL-terminated name.
};

struct InfoPidfd {
  InfoHeader hdr;
  __s32 pidfd;
};

struct InfoError {
  InfoHeader hdr;
  __s32 error;
  __u32 error_count;
};

struct InfoRange {
  InfoHeader hdr;
  __u32 pad;
  __u64 offset;
  __u64 count;
};

struct InfoMnt {
  InfoHeader hdr;
  __u64 mnt_id;
};

struct ResponseInfoAuditRule {
  __u8 type;
  __u8 pad;
  __u16 len;
  __u32 rule_number;
  __u32 subj_trust;
  __u32 obj_trust;
};

}  // namespace fan
