// statmount(2) and listmount(2) (Linux 6.8+; unique 64-bit mount ids, the ids
// FAN_MNT_ATTACH/DETACH report). Called directly by number: glibc has no
// wrappers, and Debian's 6.1 headers lack the structs, defined here.
#pragma once

#include <napi.h>

namespace fan {

// statMount(mntId: bigint) -> { mountId, parentId, mountIdOld, parentIdOld,
//   devMajor, devMinor, fsType, mountPoint, mountRoot, source } ; null if the
//   mount is gone (ENOENT). Throws other errors.
Napi::Value StatMount(const Napi::CallbackInfo& info);

// listMounts() -> bigint[]: every mount of this process's mount namespace.
Napi::Value ListMounts(const Napi::CallbackInfo& info);

}  // namespace fan
