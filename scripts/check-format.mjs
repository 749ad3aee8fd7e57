#!/usr/bin/env node
// Formatting checks for CI (`npm run lint`): prettier for TypeScript/JS, clang-format for C++/CUDA.
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
    execFileSync('clang-format', fix ? ['-i', ...files] : ['--dry-run', '-Werror', ...files], { stdio: 'inherit' });
  }
} catch {
  console.error(fix ? 'formatting failed' : 'formatting check failed: run `npm run format` to fix');
  process.exit(1);
}
