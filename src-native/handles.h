// File handles: open_by_handle_at(2) and statfs(2) fsids, for resolve().
#pragma once

#include <napi.h>

namespace fan {

// fsidOf(path) -> [val0, val1], the statfs f_fsid halves as unsigned 32-bit.
Napi::Value FsidOf(const Napi::CallbackInfo& info);

// pathOfHandle(mountPoint, fsid0, fsid1, handleType, handle, callback(err, path | null | undefined)):
// on the threadpool, opens the mount point (only for the call, so no mount is
// kept busy), checks it still holds the filesystem with that fsid (undefined
// if not: the caller refreshes its mount table), then open_by_handle_at and
// the path of the opened object. ESTALE (the object is gone) gives null.
Napi::Value PathOfHandle(const Napi::CallbackInfo& info);

// openDirByHandle(mountPoint, handleType, handle) -> fd: a directory opened
// by its handle through the mount at mountPoint (the caller closes it).
Napi::Value OpenDirByHandle(const Napi::CallbackInfo& info);

// dirChain(mountPoint, fsid0, fsid1, handleType, handle, callback(err, chain)):
// a directory's ancestry up to the mount's root, walked through ".." on the
// threadpool: [rootHandleType, rootHandle, then handleType, handle, name for
// the directory and each parent below the root]. null: gone; 'outside': not
// under the mount's root (a bind mount of part of the filesystem);
// undefined: the mount point no longer holds that fsid.
Napi::Value DirChain(const Napi::CallbackInfo& info);

}  // namespace fan
