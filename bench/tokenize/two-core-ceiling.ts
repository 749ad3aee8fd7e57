/**
 * What two threads can do on this machine right now: the same integer loop run once on the calling thread, then
 * split in halves between the calling thread and one persistent worker thread woken through a shared Int32Array (no
 * message passing), timed like countBatch against its loop. A loop with no memory traffic, so the ratio of the two
 * times is what two cores give a perfectly divisible job of that length, a wake-up and the hypervisor's share of the
 * second core included. The calling thread runs the other half itself so that only one thread is woken while one
 * runs: with two workers woken by a running caller on a 2-CPU machine, Linux sometimes queued both workers on one
 * CPU for the whole round, and the ratio fell to 1.0x in rounds where countBatch (whose pool places its helpers on
 * CPUs of their own) reached 2x. On a shared 2-core VM it still moves from run to run; the batch bench prints it from
 * the same rounds, so a countBatch speed-up is read against the machine's state at that moment.
 */
import { Worker } from 'node:worker_threads';

// xorshift32 and a multiply: a serial chain, the same machine code on every thread once optimised.
const ALU = `function alu(n) {
  let x = 1, acc = 0;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    acc = (acc + Math.imul(x, 0x9e3779b1)) | 0;
  }
  return acc;
}`;
const alu = new Function(`${ALU}; return alu;`)() as (n: number) => number;

// ctl[0]: generation (bumped to start a round), ctl[1]: the worker's iterations, ctl[2]: 1 once the worker has run
// its half, ctl[3]: stop.
const WORKER = `
const { workerData } = require('node:worker_threads');
${ALU}
const ctl = new Int32Array(workerData);
let seen = 0, sink = 0;
for (;;) {
  Atomics.wait(ctl, 0, seen);
  seen = Atomics.load(ctl, 0);
  if (Atomics.load(ctl, 3)) break;
  sink ^= alu(Atomics.load(ctl, 1));
  Atomics.add(ctl, 2, 1);
  Atomics.notify(ctl, 2);
}
`;

export class TwoCoreCeiling {
  private readonly ctl = new Int32Array(new SharedArrayBuffer(16));
  private readonly worker: Worker;
  private sink = 0;
  private itersPerMs = 0;

  private constructor() {
    this.worker = new Worker(WORKER, { eval: true, workerData: this.ctl.buffer });
  }

  static async start(): Promise<TwoCoreCeiling> {
    const c = new TwoCoreCeiling();
    await new Promise((resolve) => c.worker.once('online', resolve));
    c.calibrate();
    return c;
  }

  private calibrate() {
    // Warm the JIT on every thread, then measure the loop's speed on this one.
    for (let k = 0; k < 5; k++) this.round(2_000_000);
    const t0 = performance.now();
    this.sink ^= alu(4_000_000);
    this.itersPerMs = 4_000_000 / (performance.now() - t0);
  }

  /** Iterations that take about `ms` on one thread. */
  iterations(ms: number): number {
    return Math.max(2, Math.round(ms * this.itersPerMs));
  }

  /** One round: the loop of `iters` on this thread, then one half here and one on the worker; returns one/two. */
  round(iters: number): number {
    const half = Math.ceil(iters / 2);
    const t0 = performance.now();
    this.sink ^= alu(half * 2);
    const t1 = performance.now();
    Atomics.store(this.ctl, 1, half);
    Atomics.store(this.ctl, 2, 0);
    Atomics.add(this.ctl, 0, 1);
    Atomics.notify(this.ctl, 0);
    this.sink ^= alu(half);
    for (let done; (done = Atomics.load(this.ctl, 2)) < 1;) Atomics.wait(this.ctl, 2, done);
    const t2 = performance.now();
    return (t1 - t0) / (t2 - t1);
  }

  async close(): Promise<void> {
    Atomics.store(this.ctl, 3, 1);
    Atomics.add(this.ctl, 0, 1);
    Atomics.notify(this.ctl, 0);
    await new Promise((resolve) => this.worker.once('exit', resolve));
  }
}
