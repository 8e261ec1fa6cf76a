/**
 * Stage planning for pipelined block training (no gradient crosses a block boundary, so block k
 * can train on batch t while block k+1 trains on batch t−1): which contiguous blocks each worker
 * runs and with how many onnxruntime threads, so that the slowest stage — the pipeline's step time — is
 * as short as possible.
 */

/** One worker's share: blocks [first, last] (inclusive, indices into the run's block list). */
export interface StagePlan {
  first: number;
  last: number;
  threads: number;
  /** Predicted (or measured) milliseconds per step of this stage; undefined before measuring. */
  ms?: number;
}

/**
 * Milliseconds of block `b` at `t` intra-op threads. Amdahl's law from one measurement: a fraction
 * `parallel` of the time shrinks with threads, the rest does not.
 */
export type CostModel = (block: number, threads: number) => number;

export function amdahlCost(measuredMs: number[], measuredThreads: number, parallel: number[] | number): CostModel {
  const p = (b: number) => (typeof parallel === 'number' ? parallel : parallel[b]!);
  return (b, t) => (measuredMs[b]! * (1 - p(b) + p(b) / t)) / (1 - p(b) + p(b) / measuredThreads);
}

/**
 * The parallel fraction assumed when only one thread count was measured. Conv-heavy steps scale
 * well with onnxruntime's threads but not perfectly (measured on this machine, 1 → 2 threads:
 * the README's scaling table); 0.8 keeps the planner from starving a stage of threads.
 */
export const DEFAULT_PARALLEL_FRACTION = 0.8;

/**
 * Splits `blocks` blocks into exactly `workers` contiguous stages and `threads` threads over them
 * (each stage ≥ 1), minimising the slowest stage's time; ties go to the plan with less total time.
 * Exhaustive dynamic programming: fine for the tens of blocks and threads a run has.
 */
export function balanceStages(blocks: number, workers: number, threads: number, cost: CostModel): StagePlan[] {
  if (!(workers >= 1 && workers <= blocks)) throw new Error(`cannot split ${blocks} blocks over ${workers} pipeline workers: use 1 to ${blocks} workers`);
  if (threads < workers) throw new Error(`${workers} pipeline workers need at least ${workers} threads (one each), got ${threads}`);
  // stageMs(i, j, t): blocks i..j-1 on t threads.
  const stageMs = (i: number, j: number, t: number) => {
    let s = 0;
    for (let b = i; b < j; b++) s += cost(b, t);
    return s;
  };
  // best[s][j][u]: stages 0..s-1 covering blocks 0..j-1 using u threads → [max, sum, choice].
  type Cell = { max: number; sum: number; from?: { i: number; t: number } };
  const best: Cell[][][] = [];
  for (let s = 0; s <= workers; s++) best.push(Array.from({ length: blocks + 1 }, () => Array.from({ length: threads + 1 }, () => ({ max: Infinity, sum: Infinity }))));
  best[0]![0]![0] = { max: 0, sum: 0 };
  for (let s = 1; s <= workers; s++)
    for (let j = s; j <= blocks - (workers - s); j++)
      for (let u = s; u <= threads - (workers - s); u++)
        for (let i = s - 1; i < j; i++)
          for (let t = 1; t <= u - (s - 1); t++) {
            const prev = best[s - 1]![i]![u - t]!;
            if (prev.max === Infinity) continue;
            const ms = stageMs(i, j, t);
            const max = Math.max(prev.max, ms);
            const sum = prev.sum + ms;
            const cell = best[s]![j]![u]!;
            if (max < cell.max - 1e-9 || (Math.abs(max - cell.max) <= 1e-9 && sum < cell.sum)) best[s]![j]![u] = { max, sum, from: { i, t } };
          }
  // Use every thread: the best over u = threads (all threads assigned).
  const plan: StagePlan[] = [];
  let j = blocks;
  let u = threads;
  for (let s = workers; s >= 1; s--) {
    const from = best[s]![j]![u]!.from!;
    plan.unshift({ first: from.i, last: j - 1, threads: from.t, ms: stageMs(from.i, j, from.t) });
    j = from.i;
    u -= from.t;
  }
  return plan;
}

/** Contiguous stages of nearly equal block counts, `threads` split as evenly as possible (no measurement). */
export function evenStages(blocks: number, workers: number, threads: number): StagePlan[] {
  if (!(workers >= 1 && workers <= blocks)) throw new Error(`cannot split ${blocks} blocks over ${workers} pipeline workers: use 1 to ${blocks} workers`);
  const plan: StagePlan[] = [];
  let first = 0;
  for (let s = 0; s < workers; s++) {
    const count = Math.floor(blocks / workers) + (s < blocks % workers ? 1 : 0);
    plan.push({ first, last: first + count - 1, threads: Math.max(1, Math.floor(threads / workers) + (s < threads % workers ? 1 : 0)) });
    first += count;
  }
  return plan;
}

/** Step time of a plan (its slowest stage) and of running every block serially on `threads` threads. */
export function predictSpeedup(plan: StagePlan[], cost: CostModel, threads: number): { pipelinedMs: number; serialMs: number; speedup: number } {
  const blocks = plan.at(-1)!.last + 1;
  let serialMs = 0;
  for (let b = 0; b < blocks; b++) serialMs += cost(b, threads);
  const pipelinedMs = Math.max(...plan.map((s) => s.ms ?? 0));
  return { pipelinedMs, serialMs, speedup: serialMs / pipelinedMs };
}

/** `stage 0 → blocks 0–2 (block0 … block2), 1 thread, 41.2 ms` lines. */
export function formatPlan(plan: StagePlan[], names: string[]): string[] {
  return plan.map((s, k) => {
    const blocks = s.first === s.last ? `block ${s.first} (${names[s.first]})` : `blocks ${s.first}–${s.last} (${names[s.first]} … ${names[s.last]})`;
    return `  stage ${k} → ${blocks}, ${s.threads} thread${s.threads === 1 ? '' : 's'}${s.ms !== undefined ? `, ≈${s.ms.toFixed(1)} ms/step` : ''}`;
  });
}
