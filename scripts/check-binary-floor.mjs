#!/usr/bin/env node
// Checks that ELF binaries load on the oldest systems tokmeter supports: glibc 2.28 (Node 20's own floor) and the
// libstdc++ that the bundled ONNX Runtime already needs (GLIBCXX_3.4.22, CXXABI_1.3.11). Every undefined dynamic
// symbol must require a version at or below its library's floor; an unversioned reference is allowed only for what
// the Node process itself provides (N-API, libuv, V8/node) or a weak one, because an unversioned glibc symbol may not
// exist at all on an older glibc (stat, for one, was not exported before 2.33).
//
// Usage: node scripts/check-binary-floor.mjs FILE...   (exit 1 naming each symbol over the floor)
import { versionedImports } from './elf.mjs';

/** The newest version each versioned library may be asked for. */
export const FLOORS = { GLIBC: '2.28', GLIBCXX: '3.4.22', CXXABI: '1.3.11', GCC: '7.0.0' };
const PROCESS_PROVIDED = /^(napi_|node_api_|uv_|node_|_ZN2v8|_ZN4node)/;

function newer(a, b) {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d > 0;
  }
  return false;
}

/** The problems of one file, one line each; [] when it loads on the floor. */
export function floorProblems(file) {
  const problems = [];
  for (const s of versionedImports(file)) {
    if (s.version === null) {
      if (!s.weak && !PROCESS_PROVIDED.test(s.name)) {
        problems.push(`${s.name} is imported without a symbol version (it may not exist on glibc ${FLOORS.GLIBC})`);
      }
      continue;
    }
    const m = /^([A-Z]+)_([0-9.]+)$/.exec(s.version);
    if (!m) continue;
    const floor = FLOORS[m[1]];
    if (floor && newer(m[2], floor)) {
      problems.push(`${s.name}@${s.version} (from ${s.library}) is newer than ${m[1]}_${floor}`);
    }
  }
  return problems;
}

if (process.argv[1]?.endsWith('check-binary-floor.mjs')) {
  let failed = false;
  for (const file of process.argv.slice(2)) {
    const problems = floorProblems(file);
    if (problems.length === 0) {
      console.log(`${file}: loads on glibc >= ${FLOORS.GLIBC}, GLIBCXX <= ${FLOORS.GLIBCXX}`);
    } else {
      failed = true;
      console.error(`${file}: needs more than the supported floor:\n  ${problems.join('\n  ')}`);
    }
  }
  process.exit(failed ? 1 : 0);
}
