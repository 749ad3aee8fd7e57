/**
 * The machine's memory bandwidth for bench/generate's floor: the best of several copies of a 256 MiB buffer
 * (memcpy through Buffer.copy, one thread), counting the bytes read and written. Decode is memory-bound: each step
 * reads every weight once, so weight bytes / this bandwidth is the least time a step can take. One copying thread
 * may not saturate every memory channel, so the floor it gives is a conservative (low) tokens/s bound.
 */
const BYTES = 256 * 1024 * 1024;
const src = Buffer.alloc(BYTES, 1);
const dst = Buffer.alloc(BYTES);
let best = Infinity;
for (let i = 0; i < 6; i++) {
  const t = performance.now();
  src.copy(dst);
  best = Math.min(best, performance.now() - t);
}
process.stdout.write(JSON.stringify({ engine: 'bandwidth', gbPerS: (2 * BYTES) / (best / 1000) / 1e9 }) + '\n');
