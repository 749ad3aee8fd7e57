/**
 * Live figures of a running server for the dashboard: requests in flight, queue depth, tokens per second and time
 * to first token. `liveStatsFromMetrics()` reads them from Prometheus metrics shaped as `LiveMetrics` (the server
 * passes its own, src/server/metrics.ts), the same numbers `/metrics` exposes, so the page and a Prometheus scrape
 * agree.
 *
 * Rates need two readings: a sampler reads the counters once a second (an unref'ed timer, stopped by `stop()`),
 * keeps the last `windowMs` of readings, and a call answers with the change over that window. Token counters only
 * move when a request's usage record is accepted (the billed tokens), so tokens/s is "billed tokens per second
 * over the window", not an instantaneous decode speed. Time to first token is the histogram's change over the
 * window: mean exact, p50/p95 interpolated inside Prometheus buckets as `histogram_quantile` does.
 */
/** A prom-client metric: `get()` resolves to its values (labels and, for histograms, the series' names). */
export interface MetricReader {
  get(): Promise<unknown>;
}

/** The metrics the live figures read (prom-client counters, gauges and a histogram in seconds). */
export interface LiveMetrics {
  /** Counter: prompt tokens billed. */
  promptTokens: MetricReader;
  /** Counter: completion tokens billed. */
  completionTokens: MetricReader;
  /** Histogram: time to first token, in seconds. */
  ttft: MetricReader;
  /** Gauge: admitted generations not finished. */
  inFlight: MetricReader;
  /** Gauge: admitted generations waiting for their first token. */
  queueDepth: MetricReader;
}

export interface LiveStats {
  /** Admitted generations not finished. */
  inFlight: number;
  /** Admitted generations waiting for their first token. */
  queueDepth: number;
  /** Prompt + completion tokens billed per second over the last `windowSeconds`; null until two samples exist. */
  tokensPerSecond: number | null;
  /** Completion tokens billed per second over the same window. */
  completionTokensPerSecond: number | null;
  /** Time to first token over the last `windowSeconds` (null fields when no request started in the window). */
  ttftMs: { mean: number | null; p50: number | null; p95: number | null; count: number };
  windowSeconds: number;
}

/** A function the dashboard calls for each live reading; `stop` (optional) ends any background sampling. */
export type LiveSource = (() => LiveStats | Promise<LiveStats>) & { stop?: () => void };

interface Sample {
  t: number;
  tokens: number;
  completion: number;
  ttftCount: number;
  ttftSum: number;
  /** Cumulative bucket counts by upper bound (le), +Inf last. */
  buckets: [number, number][];
}

type MetricValues = { values: { value: number; labels: Record<string, string | number>; metricName?: string }[] };

function sum(m: MetricValues): number {
  let s = 0;
  for (const v of m.values) s += v.value;
  return s;
}

async function readSample(metrics: LiveMetrics, now: number): Promise<Sample> {
  const [p, c, h] = (await Promise.all([
    metrics.promptTokens.get(),
    metrics.completionTokens.get(),
    metrics.ttft.get(),
  ])) as MetricValues[];
  const completion = sum(c!);
  let ttftCount = 0;
  let ttftSum = 0;
  const byLe = new Map<number, number>();
  for (const v of h!.values) {
    if (v.metricName?.endsWith('_count')) ttftCount += v.value;
    else if (v.metricName?.endsWith('_sum')) ttftSum += v.value;
    else if (v.metricName?.endsWith('_bucket')) {
      const le = v.labels.le === '+Inf' ? Infinity : Number(v.labels.le);
      byLe.set(le, (byLe.get(le) ?? 0) + v.value);
    }
  }
  const buckets = [...byLe.entries()].sort((a, b) => a[0] - b[0]);
  return { t: now, tokens: sum(p!) + completion, completion, ttftCount, ttftSum, buckets };
}

/** `histogram_quantile` over cumulative buckets (upper bound, count): linear inside the bucket that holds q. */
export function bucketQuantile(q: number, buckets: [number, number][]): number | null {
  const total = buckets.length ? buckets[buckets.length - 1]![1] : 0;
  if (total <= 0) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Infinity) return prevLe; // above the last finite bound: report that bound, as Prometheus does
      if (count === prevCount) return le;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / (count - prevCount);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

/** The live figures between two samples (exported for tests). */
export function liveBetween(first: Sample, last: Sample, inFlight: number, queueDepth: number): LiveStats {
  const dt = (last.t - first.t) / 1000;
  const n = last.ttftCount - first.ttftCount;
  const firstByLe = new Map(first.buckets);
  const delta: [number, number][] = last.buckets.map(([le, c]) => [le, c - (firstByLe.get(le) ?? 0)]);
  const toMs = (s: number | null): number | null => (s === null ? null : Math.round(s * 1000 * 10) / 10);
  return {
    inFlight,
    queueDepth,
    tokensPerSecond: dt > 0 ? (last.tokens - first.tokens) / dt : null,
    completionTokensPerSecond: dt > 0 ? (last.completion - first.completion) / dt : null,
    ttftMs: {
      count: n,
      mean: n > 0 ? toMs((last.ttftSum - first.ttftSum) / n) : null,
      p50: n > 0 ? toMs(bucketQuantile(0.5, delta)) : null,
      p95: n > 0 ? toMs(bucketQuantile(0.95, delta)) : null,
    },
    windowSeconds: Math.round(dt * 10) / 10,
  };
}

export interface LiveFromMetricsOptions {
  /** Window for rates and time to first token (default 30 s). */
  windowMs?: number;
  /** Sampling interval (default 1 s). */
  sampleMs?: number;
  now?: () => number;
}

/** Live figures from the server's metrics; call `stop()` when the server closes (the dashboard plugin does). */
export function liveStatsFromMetrics(metrics: LiveMetrics, options: LiveFromMetricsOptions = {}): LiveSource {
  const windowMs = options.windowMs ?? 30_000;
  const sampleMs = options.sampleMs ?? 1000;
  const now = options.now ?? Date.now;
  const samples: Sample[] = [];
  const take = async (): Promise<Sample> => {
    const s = await readSample(metrics, now());
    samples.push(s);
    while (samples.length > 2 && samples[1]!.t <= s.t - windowMs) samples.shift();
    return s;
  };
  void take();
  const timer = setInterval(() => void take(), sampleMs);
  timer.unref();
  const live = async (): Promise<LiveStats> => {
    const last = await take();
    const first = samples[0]!;
    const [g1, g2] = (await Promise.all([metrics.inFlight.get(), metrics.queueDepth.get()])) as MetricValues[];
    return liveBetween(first, last, sum(g1!), sum(g2!));
  };
  return Object.assign(live, { stop: () => clearInterval(timer) });
}
