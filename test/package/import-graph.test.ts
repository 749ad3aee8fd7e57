// scripts/check-imports.mjs (run by `npm run lint`): the layer order of src/ and no import cycle. Each case writes a
// small tree into a temp folder and checks that the offending import is named.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
// @ts-expect-error -- a plain .mjs script without type declarations
import { checkImports as checkImportsUntyped } from '../../scripts/check-imports.mjs';

const checkImports = checkImportsUntyped as (root: string) => { errors: string[]; files: number; edges: number };
let root: string;

function write(files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) {
    const file = path.join(root, name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
  }
}

/** A tree that follows the rules: errors ← usage ← scale ← server, usage through its index. */
const CLEAN = {
  'errors.ts': 'export class E extends Error {}\n',
  'usage/index.ts': "export { Meter } from './meter.js';\n",
  'usage/meter.ts': "import { E } from '../errors.js';\nexport class Meter { e = E; }\n",
  'scale/index.ts': "import type { Meter } from '../usage/index.js';\nexport type M = Meter;\n",
  'server/app.ts':
    "import { Meter } from '../usage/index.js';\nexport const s = async () => import('../scale/index.js');\nexport const m = new Meter();\n",
};

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'tokmeter-imports-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

describe('check-imports', () => {
  it('accepts a tree whose arrows all point down', () => {
    write(CLEAN);
    const r = checkImports(root);
    expect(r.errors).toEqual([]);
    expect(r.edges).toBe(5);
  });

  it('names an upward import, also a type-only or dynamic one', () => {
    write({
      ...CLEAN,
      'usage/meter.ts': "import type { M } from '../scale/index.js';\nexport class Meter { m?: M; }\n",
      'usage/lazy.ts': "export const app = () => import('../server/app.js');\n",
    });
    const { errors } = checkImports(root);
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/usage\/meter\.ts:1 imports '\.\.\/scale\/index\.js': upward import, usage .* scale/),
        expect.stringMatching(/usage\/lazy\.ts:1 imports '\.\.\/server\/app\.js': upward import/),
      ]),
    );
  });

  it('names an import cycle between files, inside one folder', () => {
    write({
      ...CLEAN,
      'usage/a.ts': "import { b } from './b.js';\nexport const a = () => b;\n",
      'usage/b.ts': "import type { a } from './a.js';\nexport const b = 1 as unknown as typeof a;\n",
    });
    const { errors } = checkImports(root);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^import cycle: .*usage\/a\.ts -> .*usage\/b\.ts -> .*usage\/a\.ts$/);
  });

  it('names an import of usage internals from another folder, and a folder outside the layers', () => {
    write({
      ...CLEAN,
      'usage/sql.ts': 'export const COLUMNS = [];\n',
      'scale/sink.ts': "import { COLUMNS } from '../usage/sql.js';\nexport const c = COLUMNS;\n",
      'extras/x.ts': 'export const x = 1;\n',
    });
    const { errors } = checkImports(root);
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/scale\/sink\.ts:1 imports '\.\.\/usage\/sql\.js': usage\/ is imported .* only through/),
        expect.stringMatching(/extras: not in any layer/),
      ]),
    );
  });

  it('passes on src/', () => {
    const r = checkImports(path.join(import.meta.dirname, '..', '..', 'src'));
    expect(r.errors).toEqual([]);
    expect(r.files).toBeGreaterThan(50);
  });
});
