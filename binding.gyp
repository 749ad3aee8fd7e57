{
  "targets": [
    {
      "target_name": "tokmeter",
      "sources": ["<!@(node scripts/gyp-sources.cjs)"],
      "include_dirs": [
        "native",
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!(node scripts/fetch-onnxruntime.mjs --print-include)",
        "<!@(node scripts/fetch-static-libs.mjs --print-include)"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "ORT_API_MANUAL_INIT",
        "PCRE2_CODE_UNIT_WIDTH=8",
        "PCRE2_STATIC",
        "UTF8PROC_STATIC",
        "TOKMETER_VERSION=\"<!(node -p \"require('./package.json').version\")\""
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": ["-std=c++20", "-fexceptions", "-frtti", "-fvisibility=hidden", "-fvisibility-inlines-hidden", "-O3"],
      "libraries": ["<!@(node scripts/fetch-static-libs.mjs --print-ldflags)", "-l:libpcre2-8.a", "-l:libutf8proc.a", "<!@(node scripts/link-flags.cjs)", "-Wl,--exclude-libs,ALL", "-static-libstdc++"]
    }
  ]
}
