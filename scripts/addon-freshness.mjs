// Is a source build of the addon older than the sources it was built from? A development checkout keeps
// build/Release/tokmeter.node across `git pull`; without this check `npm install` would keep using an addon that
// lacks what the new TypeScript calls. Prebuilds (prebuilds/<platform>) ship with their package and are never stale.
import fs from 'node:fs';
import path from 'node:path';

/** Files and folders whose changes require rebuilding the addon. */
export const NATIVE_INPUTS = ['native', 'CMakeLists.txt', 'binding.gyp'];

/**
 * The native source files under `root` modified after `addonFile` was written (at most `limit` of them), or [] when
 * the addon is current, is not a source build (not under root/build), or there are no sources (an installed package).
 */
export function staleSources(root, addonFile, limit = 3) {
  const rel = path.relative(path.join(root, 'build'), addonFile);
  if (rel.startsWith('..') || path.isAbsolute(rel)) return [];
  let built;
  try {
    built = fs.statSync(addonFile).mtimeMs;
  } catch {
    return [];
  }
  const newer = [];
  const visit = (p) => {
    if (newer.length >= limit) return;
    let st;
    try {
      st = fs.statSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      for (const name of fs.readdirSync(p).sort()) visit(path.join(p, name));
    } else if (st.mtimeMs > built) newer.push(path.relative(root, p));
  };
  for (const input of NATIVE_INPUTS) visit(path.join(root, input));
  return newer;
}
