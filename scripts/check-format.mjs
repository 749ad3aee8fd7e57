#!/usr/bin/env node
// Formatting checks for CI (`npm run lint`): prettier for TypeScript/JS, clang-format for C++/CUDA (the pinned
// clang-format-node devDependency, so every machine formats alike and none needs a system package).
// With --fix, rewrites files instead of reporting them.
import { execFileSync } from 'node:child_process';

const fix = process.argv.includes('--fix');
const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', 'native'], {
  encoding: 'utf8',
})
  .split('\n')
  .filter((f) => /\.(cc|h|cu|cuh)$/.test(f));
try {
  execFileSync('npx', ['--no-install', 'prettier', fix ? '--write' : '--check', '--log-level', 'warn', '.'], {
    stdio: 'inherit',
  });
  if (files.length) {
    execFileSync('npx', ['--no-install', 'clang-format', ...(fix ? ['-i'] : ['--dry-run', '-Werror']), ...files], {
      stdio: 'inherit',
    });
  }
} catch {
  console.error(fix ? 'formatting failed' : 'formatting check failed: run `npm run format` to fix');
  process.exit(1);
}
