// File handles: open_by_handle_at(2) and statfs(2) fsids, for resolve().
#pragma once

#include <napi.h>

namespace fan {

// fsidOf(path) -> [val0, val1], the statfs f_fsid halves as unsigned 32-bit.
Napi::Value FsidOf(const Napi::CallbackInfo& info);

// pathOfHandle(mountFd, handleType, handle, callback(err, path | null)):
// open_by_handle_at on the threadpool, then the path of the opened object.
// ESTALE (the object is gone) gives null.
Napi::Value PathOfHandle(const Napi::CallbackInfo& info);

}  // namespace fan
