/**
 * A small timing harness: calibrate a loop so one repetition takes ~`targetMs`, warm it up, then
 * take the median of `reps` repetitions. Loops that are measured together are interleaved rep by rep
 * so that a slow patch of the machine (frequency change, a noisy neighbour) hits all of them alike.
 * @module
 */

/** Runs `iters` iterations and returns the elapsed nanoseconds (the loop times itself). */
export type TimedLoop = (iters: number) => number;

/** Runs `iters` iterations; timed from outside with `performance.now()`. */
export type Loop = (iters: number) => void;

export interface HarnessOptions {
  /** Repetitions per loop; the reported figure is their median. */
  reps: number;
  /** Target duration of one repetition in milliseconds. */
  targetMs: number;
  /** Minimum time spent in full-length warm-up repetitions before measuring, in milliseconds. */
  warmupMs: number;
  /** Largest iteration count a loop accepts (the C loops take a u32). */
  maxIters: number;
}

export const DEFAULT_OPTIONS: Readonly<HarnessOptions> = {
  reps: 9,
  targetMs: 30,
  warmupMs: 100,
  maxIters: 0xffff_ffff,
};

export interface Measurement {
  /** Median nanoseconds per iteration over the repetitions. */
  nsPerOp: number;
  /** Fastest and slowest repetition, in nanoseconds per iteration. */
  minNsPerOp: number;
  maxNsPerOp: number;
  /** Iterations per repetition. */
  iters: number;
  /** Every repetition, in nanoseconds per iteration, in the order they ran. */
  samples: number[];
}

/** Wraps a plain loop so it is timed with `performance.now()`. */
export function timed(loop: Loop): TimedLoop {
  return (iters) => {
    const t0 = performance.now();
    loop(iters);
    return (performance.now() - t0) * 1e6;
  };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError("median of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function run(loop: TimedLoop, iters: number): number {
  const ns = loop(iters);
  if (!(ns > 0) || !Number.isFinite(ns)) throw new Error(`loop reported ${ns} ns for ${iters} iterations`);
  return ns;
}

/**
 * Finds an iteration count for which one repetition takes about `targetMs`, warming the loop up on
 * the way: grows the count until a run lasts a tenth of the target, then keeps running full-length
 * repetitions, re-estimating after each, for at least `warmupMs`. Early runs are slow (interpreted,
 * or FFI calls not yet on the fast path) and would otherwise leave the count far too low.
 */
export function calibrate(loop: TimedLoop, options: HarnessOptions = DEFAULT_OPTIONS): number {
  const targetNs = options.targetMs * 1e6;
  const clamp = (n: number) => Math.max(1, Math.min(options.maxIters, Math.round(n)));
  let iters = 1;
  let ns = run(loop, iters);
  while (ns < targetNs / 10 && iters < options.maxIters) {
    iters = clamp(iters * Math.min(100, Math.max(2, Math.ceil(targetNs / 10 / ns))));
    ns = run(loop, iters);
  }
  for (let spent = 0; spent < options.warmupMs * 1e6; spent += ns) {
    iters = clamp(iters * targetNs / ns);
    ns = run(loop, iters);
  }
  return clamp(iters * targetNs / ns);
}

/**
 * Measures loops side by side: each is warmed up and calibrated, then the repetitions run
 * interleaved (rep 1 of every loop, rep 2 of every loop, …).
 */
export function measureGroup(loops: readonly TimedLoop[], options: HarnessOptions = DEFAULT_OPTIONS): Measurement[] {
  const iters = loops.map((loop) => calibrate(loop, options));
  const samples: number[][] = loops.map(() => []);
  for (let rep = 0; rep < options.reps; rep++) {
    loops.forEach((loop, i) => samples[i].push(run(loop, iters[i]) / iters[i]));
  }
  return samples.map((s, i) => ({
    nsPerOp: median(s),
    minNsPerOp: Math.min(...s),
    maxNsPerOp: Math.max(...s),
    iters: iters[i],
    samples: s,
  }));
}

let sinkValue = 0;

/** Feeds a result to the sink so that the work producing it cannot be optimised away. */
export function consume(value: number): void {
  sinkValue = (sinkValue * 31 + (value >>> 0)) >>> 0;
}

/** The sink's current value; print it so the compiler must keep everything that fed it. */
export function sink(): number {
  return sinkValue;
}
