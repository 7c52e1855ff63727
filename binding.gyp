{
  "targets": [
    {
      "target_name": "fanotify",
      "sources": [
        "src-native/addon.cc",
        "src-native/datagram.cc",
        "src-native/errors.cc",
        "src-native/group.cc",
        "src-native/handles.cc",
        "src-native/mount_watch.cc",
        "src-native/mounts.cc",
        "src-native/parser.cc",
        "src-native/pending.cc",
        "src-native/poller.cc",
        "src-native/reader.cc",
        "src-native/xattr.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "ldflags": ["-pthread"]
    }
  ]
}
