/**
 * The only module that loads the native addon, so that there is one place to find it. Everything else imports `loadAddon()` /
 * `ensureRuntime()` from here and talks to the addon through the typed contract.
 *
 * The addon is found by node-gyp-build: `build/Release/` (a source build) first, then `prebuilds/<platform>-<arch>/`
 * (what `npm install` users get); TOKMETER_ADDON names a file explicitly. ONNX Runtime is loaded separately and lazily: tokenizers work without it.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AddonLoadError } from '../errors.js';
import type { NativeRuntimeApi, NativeSessionApi } from './session-contract.js';
import type { NativeTokenizerApi } from './tokenizer-contract.js';
import type { NativeCudaApi } from './cuda-contract.js';
import type { NativeModelApi } from './model-contract.js';

export type NativeAddon = NativeRuntimeApi & NativeSessionApi & NativeTokenizerApi & NativeCudaApi & NativeModelApi;

const require = createRequire(import.meta.url);
/**
 * The package root: the nearest folder above this module whose package.json is tokmeter's. This module may be
 * src/native/binding.ts, or part of a bundled file or chunk anywhere under dist/.
 */
export const packageRoot = findPackageRoot(path.dirname(fileURLToPath(import.meta.url)));

function findPackageRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown };
      if (pkg.name === 'tokmeter') return dir;
    } catch {
      // no readable package.json here: keep going up
    }
    if (path.dirname(dir) === dir) return path.resolve(from, '..', '..');
  }
}

let addon: NativeAddon | undefined;
let addonPath: string | undefined;

/** Loads the `.node` file once per thread. Throws AddonLoadError naming the places it looked. */
export function loadAddon(): NativeAddon {
  if (addon) return addon;
  const gypBuild = require('node-gyp-build') as { resolve(dir: string): string };
  let file: string;
  try {
    // TOKMETER_ADDON: an explicit .node file (a development build in another folder, a debug build).
    file = process.env.TOKMETER_ADDON ? path.resolve(process.env.TOKMETER_ADDON) : gypBuild.resolve(packageRoot);
  } catch (err) {
    throw new AddonLoadError(
      'ERR_ADDON_NOT_FOUND',
      `tokmeter's native addon was not found in ${path.join(packageRoot, 'prebuilds')} (prebuilt) or ` +
        `${path.join(packageRoot, 'build', 'Release')} (source build). Run \`npm run build\` in ${packageRoot}, ` +
        `or reinstall tokmeter on a supported platform (prebuilds: linux-x64). Cause: ${(err as Error).message}`,
      { cause: err },
    );
  }
  try {
    addon = require(file) as NativeAddon;
  } catch (err) {
    throw new AddonLoadError('ERR_ADDON_NOT_FOUND', `cannot load ${file}: ${(err as Error).message}`, { cause: err });
  }
  addonPath = file;
  return addon;
}

/** Path of the loaded `.node` file (after loadAddon()). */
export function loadedAddonPath(): string | undefined {
  return addonPath;
}
