// Lists the C++ sources of the addon for binding.gyp (gyp has no glob). CMakeLists.txt globs the same folders,
// so both builds always compile the same files. Test sources (native/**/test/) are never part of the addon.
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const folders = ['native/util', 'native/engine', 'native/tokenizer', 'native/grammar', 'native/link', 'native/addon'];
const out = [];
function walk(rel) {
  const abs = path.join(root, rel);
  if (!fs.existsSync(abs)) return;
  for (const entry of fs.readdirSync(abs, { withFileTypes: true })) {
    const child = `${rel}/${entry.name}`;
    if (entry.isDirectory()) {
      if (entry.name !== 'test') walk(child);
    } else if (entry.name.endsWith('.cc')) {
      out.push(child);
    }
  }
}
folders.forEach(walk);
process.stdout.write(out.sort().join(' '));
