#include "mounts.h"

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <cstdint>
#include <string>
#include <vector>

#include "errors.h"

namespace fan {
namespace {

constexpr long kSysStatmount = 457;  // the same on x86-64 and arm64
constexpr long kSysListmount = 458;

// include/uapi/linux/mount.h (6.18)
struct MntIdReq {
  uint32_t size;
  uint32_t spare;
  uint64_t mnt_id;
  uint64_t param;
  uint64_t mnt_ns_id;
};

struct Statmount {
  uint32_t size;
  uint32_t mnt_opts;
  uint64_t mask;
  uint32_t sb_dev_major;
  uint32_t sb_dev_minor;
  uint64_t sb_magic;
  uint32_t sb_flags;
  uint32_t fs_type;
  uint64_t mnt_id;
  uint64_t mnt_parent_id;
  uint32_t mnt_id_old;
  uint32_t mnt_parent_id_old;
  uint64_t mnt_attr;
  uint64_t mnt_propagation;
  uint64_t mnt_peer_group;
  uint64_t mnt_master;
  uint64_t propagate_from;
  uint32_t mnt_root;
  uint32_t mnt_point;
  uint64_t mnt_ns_id;
  uint32_t fs_subtype;
  uint32_t sb_source;
  uint32_t opt_num;
  uint32_t opt_array;
  uint32_t opt_sec_num;
  uint32_t opt_sec_array;
  uint64_t supported_mask;
  uint32_t mnt_uidmap_num;
  uint32_t mnt_uidmap;
  uint32_t mnt_gidmap_num;
  uint32_t mnt_gidmap;
  uint64_t spare2[43];
  // char str[]: NUL-terminated strings, at the offsets above
};
static_assert(sizeof(Statmount) == 512, "struct statmount's fixed part is 512 bytes");

constexpr uint64_t kSbBasic = 0x1, kMntBasic = 0x2, kMntRoot = 0x8, kMntPoint = 0x10,
                   kFsType = 0x20, kSbSource = 0x200;

// A string of the variable part, or "" when the kernel did not fill it.
std::string StrAt(const std::vector<uint8_t>& buf, uint64_t mask, uint64_t want, uint32_t offset) {
  size_t at = sizeof(Statmount) + offset;
  if (!(mask & want) || at >= buf.size()) return "";
  const char* s = reinterpret_cast<const char*>(buf.data() + at);
  return std::string(s, strnlen(s, buf.size() - at));
}

}  // namespace

Napi::Value StatMount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool lossless;
  uint64_t id = info[0].As<Napi::BigInt>().Uint64Value(&lossless);
  MntIdReq req{sizeof(MntIdReq), 0, id, kSbBasic | kMntBasic | kMntRoot | kMntPoint | kFsType | kSbSource, 0};
  std::vector<uint8_t> buf(4096);
  for (;;) {
    long r = syscall(kSysStatmount, &req, buf.data(), buf.size(), 0);
    if (r == 0) break;
    if (errno == EOVERFLOW && buf.size() < (1u << 20)) {
      buf.resize(buf.size() * 4);  // long mount paths or options
      continue;
    }
    if (errno == ENOENT) return env.Null();
    throw ErrnoError(env, errno, "statmount");
  }
  Statmount sm;
  std::memcpy(&sm, buf.data(), sizeof sm);
  auto out = Napi::Object::New(env);
  out.Set("mountId", Napi::BigInt::New(env, sm.mnt_id));
  out.Set("parentId", Napi::BigInt::New(env, sm.mnt_parent_id));
  out.Set("mountIdOld", Napi::Number::New(env, sm.mnt_id_old));
  out.Set("parentIdOld", Napi::Number::New(env, sm.mnt_parent_id_old));
  out.Set("devMajor", Napi::Number::New(env, sm.sb_dev_major));
  out.Set("devMinor", Napi::Number::New(env, sm.sb_dev_minor));
  out.Set("fsType", Napi::String::New(env, StrAt(buf, sm.mask, kFsType, sm.fs_type)));
  out.Set("mountPoint", Napi::String::New(env, StrAt(buf, sm.mask, kMntPoint, sm.mnt_point)));
  out.Set("mountRoot", Napi::String::New(env, StrAt(buf, sm.mask, kMntRoot, sm.mnt_root)));
  out.Set("source", Napi::String::New(env, StrAt(buf, sm.mask, kSbSource, sm.sb_source)));
  return out;
}

Napi::Value ListMounts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<uint64_t> ids;
  uint64_t last = 0;
  for (;;) {
    constexpr uint64_t kRoot = ~0ull;  // LSMT_ROOT: the whole namespace
    MntIdReq req{sizeof(MntIdReq), 0, kRoot, last, 0};
    uint64_t chunk[256];
    long n = syscall(kSysListmount, &req, chunk, 256, 0);
    if (n < 0) throw ErrnoError(env, errno, "listmount");
    ids.insert(ids.end(), chunk, chunk + n);
    if (n < 256) break;
    last = chunk[n - 1];  // continue after the last one listed
  }
  auto out = Napi::Array::New(env, ids.size());
  for (size_t i = 0; i < ids.size(); i++) out.Set(i, Napi::BigInt::New(env, ids[i]));
  return out;
}

}  // namespace fan
