// Prints the addon's extra link flags, for CMakeLists.txt and binding.gyp alike:
//   -Wl,--wrap=NAME for every glibc symbol that native/util/glibc_floor.cc wraps (see the comment at its top), and
//   the libpthread/libdl stubs as NEEDED entries, so that the old pthread_* and dl* versions it binds to are found
//   in those libraries on a glibc older than 2.34, where they still live there.
const fs = require('node:fs');
const path = require('node:path');

if (process.platform !== 'linux') process.exit(0);
const src = fs.readFileSync(path.join(__dirname, '..', 'native', 'util', 'glibc_floor.cc'), 'utf8');
const names = new Set();
for (const m of src.matchAll(/^TOKMETER_OLD\(\s*[^,]+,\s*(\w+)\s*,/gm)) names.add(m[1]);
for (const m of src.matchAll(/\b__wrap_(\w+)\s*[=(]/g)) names.add(m[1]);
const flags = [...names].sort().map((n) => `-Wl,--wrap=${n}`);
flags.push('-Wl,--push-state,--no-as-needed', '-l:libpthread.so.0', '-l:libdl.so.2', '-Wl,--pop-state');
process.stdout.write(flags.join(' '));
