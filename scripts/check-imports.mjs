#!/usr/bin/env node
// The import graph of src/ (part of `npm run lint`). Each top-level folder or file of src/ is a unit, and the units
// stand in layers: a unit imports only units of lower layers, never one of its own layer or a higher one, so that
// every arrow points down and each layer can be used, loaded and tested without the ones above it. Some folders are
// imported from outside only through their index.ts (their public surface). No import cycle between files, type-only
// imports included.
//
//   node scripts/check-imports.mjs [root]     # root defaults to src; exit 1 naming each offending import
//
// Relative imports are read with the TypeScript compiler API: `import` / `export ... from`, `import()` with a string
// literal and `import('...')` types. Package imports are not checked.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/**
 * Lowest first. A unit is a folder of src/ (`usage`) or a file at its top (`errors` for src/errors.ts; `index` is the
 * package's entry). Units in one layer do not import each other.
 */
export const LAYERS = [
  ['lazy'], // built-ins and packages loaded on first use
  ['errors'], // error classes and codes: everything may throw them
  ['validate'], // argument checks at the edge
  ['native'], // the one module that loads the addon, and each part's typed slice of it
  ['runtime'], // finds and loads ONNX Runtime into the addon
  ['session', 'cuda'], // a raw ONNX graph; the CUDA plug-in's status
  ['tokenizer', 'modelgen'], // tokenizers; the test/demo model maker (pure TypeScript)
  ['usage'], // metering: prices, limits, budgets, ledgers; depends on a model only through MeterableModel
  ['model', 'tools'], // Model: load + generate, implements usage's MeterableModel; tool-call formats and constraints
  ['scale'], // many servers: Redis limiter, event sinks, billing worker
  ['http'], // the HTTP edge shared by the server and the dashboard: the one error table, the failure throttle
  ['dashboard'], // the usage dashboard (a fastify plugin; receives the server's metrics as a parameter)
  ['server'], // the OpenAI-compatible HTTP server
  ['cli'], // the `tokmeter` command
  ['index'], // the package's entry ('tokmeter'; the other entries are the index.ts of server, dashboard, scale)
];

/** Folders imported from other units only through their index.ts. */
export const INDEX_ONLY = ['usage'];

function unitOf(root, file) {
  const rel = path.relative(root, file).split(path.sep);
  return rel.length === 1 ? rel[0].replace(/\.[cm]?ts$/, '') : rel[0];
}

function listFiles(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p));
    else if (/\.[cm]?ts$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Relative specifiers a file imports, with their line numbers. */
function importsOf(file) {
  const sf = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const found = [];
  const add = (lit) => {
    if (lit && ts.isStringLiteralLike(lit) && lit.text.startsWith('.')) {
      found.push({ spec: lit.text, line: sf.getLineAndCharacterOfPosition(lit.getStart(sf)).line + 1 });
    }
  };
  const visit = (node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier)
      add(node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword)
      add(node.arguments[0]);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal);
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

function resolve(from, spec) {
  const base = path.resolve(path.dirname(from), spec);
  const candidates = [
    base
      .replace(/\.js$/, '.ts')
      .replace(/\.mjs$/, '.mts')
      .replace(/\.cjs$/, '.cts'),
    base,
  ];
  if (!/\.[cm]?[jt]s$/.test(base)) candidates.push(`${base}.ts`, path.join(base, 'index.ts'));
  return candidates.find((c) => fs.existsSync(c) && fs.statSync(c).isFile());
}

/**
 * Checks the tree under `root`. Returns `{ errors, files, edges }`: each error is one line naming the importing
 * file, its line, the import and the rule it breaks.
 */
export function checkImports(root, { layers = LAYERS, indexOnly = INDEX_ONLY } = {}) {
  root = path.resolve(root);
  const layerOf = new Map();
  layers.forEach((units, i) => units.forEach((u) => layerOf.set(u, i)));
  const files = listFiles(root).sort();
  const rel = (f) => path.relative(process.cwd(), f);
  const errors = [];
  const graph = new Map();
  let edges = 0;
  for (const u of new Set(files.map((f) => unitOf(root, f)))) {
    if (!layerOf.has(u))
      errors.push(`${rel(path.join(root, u))}: not in any layer; add it to LAYERS in scripts/check-imports.mjs`);
  }
  for (const file of files) {
    const from = unitOf(root, file);
    const targets = [];
    for (const { spec, line } of importsOf(file)) {
      const target = resolve(file, spec);
      const at = `${rel(file)}:${line} imports '${spec}'`;
      if (!target) {
        if (/\.[cm]?[jt]s$/.test(spec) || !path.extname(spec)) errors.push(`${at}: no such file`);
        continue;
      }
      if (!target.startsWith(root + path.sep)) continue;
      targets.push({ target, at });
      edges++;
      const to = unitOf(root, target);
      if (to === from) continue;
      const lf = layerOf.get(from);
      const lt = layerOf.get(to);
      if (lf === undefined || lt === undefined) continue; // reported above
      if (lt > lf) errors.push(`${at}: upward import, ${from} (layer ${lf}) must not depend on ${to} (layer ${lt})`);
      else if (lt === lf) errors.push(`${at}: ${from} and ${to} share layer ${lf} and must not import each other`);
      if (indexOnly.includes(to) && path.relative(path.join(root, to), target) !== 'index.ts') {
        errors.push(`${at}: ${to}/ is imported from outside only through ${to}/index.ts`);
      }
    }
    graph.set(file, targets);
  }
  errors.push(...findCycles(graph).map((c) => `import cycle: ${c.map(rel).join(' -> ')}`));
  return { errors, files: files.length, edges };
}

/** Every elementary cycle found by a depth-first search (one report per back edge), as a list of files. */
function findCycles(graph) {
  const state = new Map(); // 1 on the stack, 2 done
  const stack = [];
  const cycles = [];
  const visit = (f) => {
    state.set(f, 1);
    stack.push(f);
    for (const { target } of graph.get(f) ?? []) {
      const s = state.get(target);
      if (s === 1) cycles.push([...stack.slice(stack.indexOf(target)), target]);
      else if (s === undefined) visit(target);
    }
    stack.pop();
    state.set(f, 2);
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  return cycles;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src');
  const { errors, files, edges } = checkImports(root);
  if (errors.length) {
    for (const e of errors) console.error(e);
    console.error(`check-imports: ${errors.length} problem(s) in ${files} files`);
    process.exit(1);
  }
  console.log(`check-imports: ${files} files, ${edges} imports, every arrow points down, no cycle`);
}
