/**
 * Finds and loads ONNX Runtime (libonnxruntime.so.1) at run time. The addon has no link-time dependency on it, so
 * the same prebuilt `.node` works with the bundled runtime or with the one a user points to.
 *
 * Search order (first existing file wins):
 *   1. TOKMETER_ORT_LIBRARY — an explicit path to the library file;
 *   2. ONNXRUNTIME_DIR/lib — a folder in the layout of ONNX Runtime's release archives (e.g. a GPU build);
 *   3. beside the loaded `.node` file — the prebuild bundles it there, and the cmake build copies it there (the
 *      node-gyp build does not: gyp's copies are hard links, and prebuildify strips what lies beside the addon in
 *      place, which would rewrite the cache's file; a node-gyp build finds the runtime in the cache, 4);
 *   4. the build cache of scripts/fetch-onnxruntime.mjs (~/.cache/tokmeter/onnxruntime-1.29.0/lib).
 *
 * The bundled copy (3 and 4) is `libtokmeter-ort.so`: ONNX Runtime under a private soname, loaded by its path with
 * RTLD_LOCAL. Another package's runtime in the same process (onnxruntime-node of another version, e.g. through
 * transformers.js) therefore never binds to ours, and an already loaded `libonnxruntime.so.1` never stands in for
 * it, in either load order. A runtime named by 1 or 2 keeps its own soname: the user chose it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { RuntimeLoadError, toTokmeterError } from './errors.js';
import { nodeOs } from './lazy.js';
import { loadAddon, loadedAddonPath, type NativeAddon } from './native/binding.js';
import type { NativeRuntimeInfo } from './native/session-contract.js';

export const BUNDLED_ORT_VERSION = '1.29.0';
const LIB_NAMES =
  process.platform === 'darwin' ? ['libonnxruntime.dylib'] : ['libonnxruntime.so.1', 'libonnxruntime.so'];
/** The bundled runtime's file name and soname (scripts/fetch-onnxruntime.mjs writes it). */
export const PRIVATE_ORT_NAME = 'libtokmeter-ort.so';

let runtime: NativeRuntimeInfo | undefined;

/** The places searched for the runtime library, in order, with why each is there. */
export function runtimeCandidates(): { path: string; source: string }[] {
  const out: { path: string; source: string }[] = [];
  const explicit = process.env.TOKMETER_ORT_LIBRARY;
  if (explicit) out.push({ path: path.resolve(explicit), source: 'TOKMETER_ORT_LIBRARY' });
  const dir = process.env.ONNXRUNTIME_DIR;
  if (dir) for (const name of LIB_NAMES) out.push({ path: path.resolve(dir, 'lib', name), source: 'ONNXRUNTIME_DIR' });
  const addonFile = loadedAddonPath();
  if (addonFile) out.push({ path: path.join(path.dirname(addonFile), PRIVATE_ORT_NAME), source: 'beside the addon' });
  const cacheBase =
    process.env.TOKMETER_CACHE_DIR ??
    path.join(process.env.XDG_CACHE_HOME ?? path.join(nodeOs().homedir(), '.cache'), 'tokmeter');
  out.push({
    path: path.join(cacheBase, `onnxruntime-${BUNDLED_ORT_VERSION}`, 'lib', PRIVATE_ORT_NAME),
    source: 'build cache',
  });
  return out;
}

/** Loads the addon and ONNX Runtime once; later calls return the same runtime. */
export function ensureRuntime(): { addon: NativeAddon; runtime: NativeRuntimeInfo } {
  const addon = loadAddon();
  if (runtime) return { addon, runtime };
  const candidates = runtimeCandidates();
  // An explicit choice is final: never fall back silently past a path the user named.
  const explicit = candidates.filter((c) => c.source === 'TOKMETER_ORT_LIBRARY' || c.source === 'ONNXRUNTIME_DIR');
  const searched = explicit.length > 0 ? explicit : candidates;
  const found = searched.find((c) => fs.existsSync(c.path));
  if (!found) {
    throw new RuntimeLoadError(
      'ERR_RUNTIME_NOT_FOUND',
      `ONNX Runtime (${PRIVATE_ORT_NAME}, or ${LIB_NAMES.join(' or ')} where named) was not found. Looked in:\n` +
        searched.map((c) => `  - ${c.path} (${c.source})`).join('\n') +
        '\nFix: reinstall tokmeter (its prebuild bundles the runtime), run `node scripts/fetch-onnxruntime.mjs` in ' +
        'the tokmeter folder, or set ONNXRUNTIME_DIR to an ONNX Runtime >= 1.29 release folder.',
    );
  }
  try {
    runtime = addon.loadRuntime(found.path);
  } catch (err) {
    const mapped = toTokmeterError(err);
    if (mapped instanceof RuntimeLoadError) {
      mapped.message += ` (found via ${found.source})`;
    }
    throw mapped;
  }
  return { addon, runtime };
}

/** Versions of tokmeter's parts. Loads ONNX Runtime if it can; `onnxruntime` is null when it cannot. */
export function versions(): {
  tokmeter: string;
  napi: number;
  onnxruntime: string | null;
  onnxruntimePath: string | null;
} {
  const addon = loadAddon();
  let info: NativeRuntimeInfo | null;
  try {
    info = ensureRuntime().runtime;
  } catch {
    info = null; // versions() reports a missing runtime instead of throwing; Session.load() explains why
  }
  const v = addon.versions();
  return { tokmeter: v.addon, napi: v.napi, onnxruntime: info?.version ?? null, onnxruntimePath: info?.path ?? null };
}
