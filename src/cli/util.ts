/** Shared helpers of the `tokmeter` commands: strict option parsing and one way to report a failure. */
import { InvalidArgumentError } from 'commander';

/** commander argParser for integers in [min, max]: never coerces ("12abc" and "1.5" are errors). */
export function intArg(min: number, max = Number.MAX_SAFE_INTEGER): (v: string) => number {
  return (v: string) => {
    if (!/^-?\d+$/.test(v)) throw new InvalidArgumentError(`expected an integer, got ${JSON.stringify(v)}`);
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(
        `expected an integer in [${min}, ${max === Number.MAX_SAFE_INTEGER ? '∞' : max}], got ${v}`,
      );
    }
    return n;
  };
}

/** `--device`: 'cpu' or 'cuda'. */
export function deviceArg(v: string): 'cpu' | 'cuda' {
  if (v !== 'cpu' && v !== 'cuda') throw new InvalidArgumentError(`expected 'cpu' or 'cuda', got ${JSON.stringify(v)}`);
  return v;
}

export function numberArg(min: number, max: number): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a number in [${min}, ${max}], got ${JSON.stringify(v)}`);
    }
    return n;
  };
}

/** Repeatable string option. */
export function collect(v: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), v];
}

export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Wraps a command action: a failure prints `tokmeter <cmd>: message` (code when there is one) and exits 1. */
export function action<A extends unknown[]>(
  name: string,
  fn: (...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      const e = err as Error & { code?: string };
      process.stderr.write(`tokmeter ${name}: ${e.message ?? String(err)}${e.code ? ` (${e.code})` : ''}\n`);
      process.exitCode = 1;
    }
  };
}

/** Resolves on the first SIGINT/SIGTERM. */
export function onceSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const handler = (sig: NodeJS.Signals): void => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
      resolve(sig);
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  });
}
