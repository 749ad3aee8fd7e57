#!/usr/bin/env node
/**
 * The `tokmeter` command (commander): serve, generate, count, usage, make-model, demo, keys.
 * Each command lives in its own file; a failure prints `tokmeter <command>: <message> (<code>)` and exits 1.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { registerCount } from './count.js';
import { registerDemo } from './demo.js';
import { registerGenerate } from './generate.js';
import { registerKeys } from './keys.js';
import { registerMakeModel } from './make-model.js';
import { registerServe } from './serve.js';
import { registerUsage } from './usage.js';
import { registerBillingWorker } from './billing-worker.js';
import { packageRoot } from '../native/binding.js';

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export function buildProgram(): Command {
  const program = new Command('tokmeter')
    .description('token-metered LLM inference: an OpenAI-compatible server, generation and exact token counting')
    .version(version())
    .showHelpAfterError();
  registerServe(program);
  registerGenerate(program);
  registerCount(program);
  registerUsage(program);
  registerMakeModel(program);
  registerDemo(program);
  registerKeys(program);
  registerBillingWorker(program);
  return program;
}

await buildProgram().parseAsync(process.argv);
