/**
 * Pipelined block training against the serial schedule (issue 12), at the same total
 * number of onnxruntime threads: training images/s of
 *  - serial: every block on the main thread, each session on all T threads;
 *  - pipeline-1: one worker holding every block on T threads (the cost of the worker machinery);
 *  - pipeline-2: two workers, stages and threads balanced on measured block costs;
 *  - bp: BP's train step (whole network, one session on T threads), for SFF ÷ BP per round.
 * Each measurement runs in its own child process (its own peak RSS), and the modes alternate
 * round after round (serial, pipeline-1, pipeline-2, serial, …) so that a machine whose load drifts
 * weighs on all of them alike; each round's ratio is kept and their spread reported.
 * From the per-block costs at 1 and T threads (Amdahl fit per block) it models what 4, 8 and 16
 * cores would give: the best balanced pipeline over the serial step on the same cores.
 *
 *   node dist/bench/pipeline.js [--cases cnnb,resnet18,mobilenetv3-small] [--threads 2] [--rounds 2] [--reps 4] [--out FILE]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prepareModel } from '../train/model.js';
import { numElements } from '../ir/tensor.js';
import { buildBlockGraphs, planStages } from '../train/stages.js';
import { SerialExecutor, type BlockExecutor, type BatchResult } from '../train/executor.js';
import { runnerFor } from '../train/pipeline/blocks.js';
import { BlockPipeline } from '../train/pipeline/coordinator.js';
import { PipelinedExecutor, startPipeline } from '../train/pipeline/executor.js';
import type { WorkerBlock } from '../train/pipeline/messages.js';
import { amdahlCost, balanceStages, evenStages, formatPlan, type StagePlan } from '../train/pipeline/plan.js';
import { benchRunConfig, randomInput, type ThroughputCase } from './throughput.js';
import { childMain, hwmMB, maxRssMB, resetPeakRss, runChild } from './child.js';
import { median, round } from '../util/stats.js';

/** 'bp': BP's train step (the whole network as one block) on all T threads, the speed SFF is held to. */
export type PipelineMode = 'serial' | 'pipeline-1' | 'pipeline-2' | 'bp';
export const PIPELINE_MODES: PipelineMode[] = ['serial', 'pipeline-1', 'pipeline-2', 'bp'];

export interface PipelineMeasureSpec extends ThroughputCase {
  mode: PipelineMode;
  threads: number;
  warmup: number;
  reps: number;
}

export interface PipelineMeasurement extends PipelineMeasureSpec {
  blocks: string[];
  plan: StagePlan[];
  buildSeconds: number;
  /** Steady-state ms per step: between the first and last timed batch's completion, per batch. */
  msPerStep: number;
  /** Wall time of the timed batches including filling and draining the pipeline, per batch. */
  msPerStepWithFill: number;
  imagesPerSecond: number;
  /** Busy ms per step of each block at this mode's threads. */
  blockMs: number[];
  /** pipeline-2: the calibration's per-block ms and the threads they were measured at. */
  calibration?: { blockMs: number[]; measuredThreads: number[] };
  peakRssMB: number;
  stepPeakRssMB: number;
}



/** The trainer's blocks for a case (SFF's, or BP's single one), as workers receive them. */
async function caseBlocks(c: ThroughputCase, method: 'sff' | 'bp'): Promise<{ blocks: WorkerBlock[]; inputDims: number[] }> {
  const pm = await prepareModel(c.model, { imageSize: c.imageSize });
  const J = 10;
  const cfg = benchRunConfig(method, J, c.imageSize, c.batch, pm.fromScratch);
  const blocks: WorkerBlock[] = [];
  for (const stage of planStages(pm, cfg)) blocks.push((await buildBlockGraphs(blocks.length, stage, { classes: J, batchSize: c.batch, lr: cfg.lr, withEval: true })).graphs);
  return { blocks, inputDims: pm.inputShape };
}

/** One mode of one case, in this process. */
export async function measurePipeline(spec: PipelineMeasureSpec): Promise<PipelineMeasurement> {
  const t0 = performance.now();
  const { blocks, inputDims } = await caseBlocks(spec, spec.mode === 'bp' ? 'bp' : 'sff');
  const B = spec.batch;
  const x = randomInput(B * numElements(inputDims));
  const labels = BigInt64Array.from({ length: B }, (_, i) => BigInt(i % 10));
  let executor: BlockExecutor;
  let plan: StagePlan[];
  if (spec.mode === 'serial' || spec.mode === 'bp') {
    executor = new SerialExecutor(await Promise.all(blocks.map((b) => runnerFor(b, { threads: spec.threads, memArena: false }))));
    plan = [{ first: 0, last: blocks.length - 1, threads: spec.threads }];
  } else if (spec.mode === 'pipeline-1') {
    plan = evenStages(blocks.length, 1, spec.threads);
    executor = new PipelinedExecutor(await BlockPipeline.start(blocks, plan, { memArena: false }));
  } else {
    const p = await startPipeline(blocks, { setting: 2, threads: spec.threads, memArena: false, calibration: { x, dims: inputDims, n: B, labels }, log: (l) => console.error(l) });
    executor = p;
    plan = p.pipeline.plan;
  }
  const buildSeconds = (performance.now() - t0) / 1000;
  const reset = resetPeakRss();
  // Batches kept in flight as the epoch loop keeps them; completion times give the steady-state rate.
  const run = async (count: number): Promise<number[]> => {
    const inFlight: Promise<BatchResult>[] = [];
    const done: number[] = [];
    const readBack = async () => {
      await inFlight.shift()!;
      done.push(performance.now());
    };
    for (let i = 0; i < count; i++) {
      while (inFlight.length >= executor.depth) await readBack();
      inFlight.push(executor.train(x, inputDims, B, i + 1, labels));
    }
    while (inFlight.length) await readBack();
    return done;
  };
  await run(spec.warmup);
  await executor.takeSeconds();
  const start = performance.now();
  const done = await run(spec.reps);
  const blockSeconds = await executor.takeSeconds();
  const msPerStep = (done.at(-1)! - done[0]!) / Math.max(1, spec.reps - 1);
  const calibration = executor instanceof PipelinedExecutor ? executor.calibration : undefined;
  const result: PipelineMeasurement = {
    ...spec,
    blocks: blocks.map((b) => b.name),
    plan,
    buildSeconds: round(buildSeconds, 1),
    msPerStep: round(msPerStep, 1),
    msPerStepWithFill: round((done.at(-1)! - start) / spec.reps, 1),
    imagesPerSecond: round((B * 1000) / msPerStep, 1),
    blockMs: blockSeconds.map((s) => round((s * 1000) / spec.reps, 1)),
    ...(calibration ? { calibration: { blockMs: calibration.blockMs.map((m) => round(m, 1)), measuredThreads: calibration.measuredThreads } } : {}),
    peakRssMB: Math.round(maxRssMB()),
    stepPeakRssMB: reset ? Math.round(hwmMB()) : NaN,
  };
  await executor.close();
  return result;
}

export interface ScalingModelRow {
  cores: number;
  serialMs: number;
  workers: number;
  plan: StagePlan[];
  pipelinedMs: number;
  speedup: number;
}

/**
 * What C cores would give, from per-block costs measured at 1 and T threads: each block's
 * parallel fraction p from Amdahl's law (t_T = t_1 · (1 − p + p/T)), then the best balanced
 * pipeline (any worker count) against every block on C threads one after another. It assumes
 * cores scale as the fit says and ignores memory bandwidth and the hand-over between stages.
 */
export function scalingModel(ms1: number[], msT: number[], T: number, coresList = [4, 8, 16]): { parallel: number[]; rows: ScalingModelRow[] } {
  const parallel = ms1.map((m1, b) => Math.min(1, Math.max(0, (1 - msT[b]! / m1) / (1 - 1 / T))));
  const cost = amdahlCost(ms1, 1, parallel);
  const K = ms1.length;
  const rows = coresList.map((cores) => {
    let serialMs = 0;
    for (let b = 0; b < K; b++) serialMs += cost(b, cores);
    let best: StagePlan[] = balanceStages(K, 1, cores, cost);
    for (let w = 2; w <= Math.min(K, cores); w++) {
      const p = balanceStages(K, w, cores, cost);
      if (Math.max(...p.map((s) => s.ms!)) < Math.max(...best.map((s) => s.ms!)) - 1e-9) best = p;
    }
    const pipelinedMs = Math.max(...best.map((s) => s.ms!));
    return { cores, serialMs: round(serialMs, 1), workers: best.length, plan: best.map((s) => ({ ...s, ms: round(s.ms!, 1) })), pipelinedMs: round(pipelinedMs, 1), speedup: round(serialMs / pipelinedMs, 2) };
  });
  return { parallel: parallel.map((p) => round(p, 2)), rows };
}

export interface PipelineCaseReport extends ThroughputCase {
  rounds: PipelineMeasurement[][];
  /** Per mode: median img/s over rounds, and peak RSS (max over rounds). */
  modes: Record<PipelineMode, { imagesPerSecond: number; msPerStep: number; peakRssMB: number; stepPeakRssMB: number }>;
  /** Speed-up over serial per round and its median; `unstable` when the rounds' spread exceeds 10%. */
  speedup: Record<'pipeline-1' | 'pipeline-2', RoundRatio>;
  /** SFF (serial, and pipelined on 2 workers) ÷ BP, img/s, per round and median. */
  vsBp: Record<'serial' | 'pipeline-2', RoundRatio>;
  plan: string[];
  scaling: ReturnType<typeof scalingModel>;
}

export interface RoundRatio {
  perRound: number[];
  median: number;
  spread: number;
  unstable: boolean;
}

export interface PipelineReport {
  date: string;
  threads: number;
  loadAverage: number[];
  cases: PipelineCaseReport[];
}

const ENTRY = fileURLToPath(import.meta.url);

export async function runPipelineBench(opts: { cases: ThroughputCase[]; threads: number; rounds: number; reps: number; warmup: number; out?: string; log?: (s: string) => void }): Promise<PipelineReport> {
  const log = opts.log ?? ((s: string) => console.error(s));
  const report: PipelineReport = { date: new Date().toISOString(), threads: opts.threads, loadAverage: (await import('node:os')).loadavg().map((l) => round(l, 2)), cases: [] };
  for (const c of opts.cases) {
    const rounds: PipelineMeasurement[][] = [];
    for (let r = 0; r < opts.rounds; r++) {
      const row: PipelineMeasurement[] = [];
      for (const mode of PIPELINE_MODES) {
        const m = await runChild<PipelineMeasurement>(ENTRY, { ...c, mode, threads: opts.threads, warmup: opts.warmup, reps: opts.reps } satisfies PipelineMeasureSpec, { timeoutSeconds: 1800 });
        log(`  ${c.model} ${c.imageSize}px b${c.batch} round ${r + 1} ${mode.padEnd(10)} ${m.imagesPerSecond.toFixed(1)} img/s (${m.msPerStep.toFixed(0)} ms/step), peak RSS ${m.peakRssMB} MB`);
        row.push(m);
      }
      rounds.push(row);
    }
    const byMode = (mode: PipelineMode) => rounds.map((row) => row.find((m) => m.mode === mode)!);
    const modes = Object.fromEntries(
      PIPELINE_MODES.map((mode) => {
        const ms = byMode(mode);
        return [mode, { imagesPerSecond: round(median(ms.map((m) => m.imagesPerSecond)), 1), msPerStep: round(median(ms.map((m) => m.msPerStep)), 1), peakRssMB: Math.max(...ms.map((m) => m.peakRssMB)), stepPeakRssMB: Math.max(...ms.map((m) => m.stepPeakRssMB)) }];
      }),
    ) as PipelineCaseReport['modes'];
    const speedOf = (mode: PipelineMode, over: PipelineMode = 'serial'): RoundRatio => {
      const perRound = rounds.map((row) => round(row.find((m) => m.mode === mode)!.imagesPerSecond / row.find((m) => m.mode === over)!.imagesPerSecond, 3));
      const med = median(perRound);
      const spread = round((Math.max(...perRound) - Math.min(...perRound)) / med, 3);
      return { perRound, median: round(med, 3), spread, unstable: spread > 0.1 };
    };
    const p2 = byMode('pipeline-2')[0]!;
    const ms1 = p2.calibration!.blockMs.map((m, b) => (p2.calibration!.measuredThreads[b] === 1 ? m : NaN));
    const msT = byMode('serial').map((m) => m.blockMs);
    const msTmed = msT[0]!.map((_, b) => median(msT.map((r) => r[b]!)));
    const caseReport: PipelineCaseReport = {
      ...c,
      rounds,
      modes,
      speedup: { 'pipeline-1': speedOf('pipeline-1'), 'pipeline-2': speedOf('pipeline-2') },
      vsBp: { serial: speedOf('serial', 'bp'), 'pipeline-2': speedOf('pipeline-2', 'bp') },
      plan: formatPlan(p2.plan, p2.blocks),
      scaling: scalingModel(ms1, msTmed, opts.threads),
    };
    report.cases.push(caseReport);
    if (opts.out) {
      mkdirSync(dirname(opts.out), { recursive: true });
      writeFileSync(opts.out, JSON.stringify(report, null, 2) + '\n');
    }
  }
  return report;
}

export function pipelineMarkdown(r: PipelineReport): string {
  const short = (m: string) => m.replace('builtin:', '');
  const out = [
    `Measured ${r.date.slice(0, 10)}, ${r.threads} threads in all per mode, load average at start ${r.loadAverage.join(' / ')}.`,
    '',
    '| case | serial img/s | 1 worker img/s (× serial) | 2 workers img/s (× serial) | spread | BP img/s | SFF ÷ BP serial / 2 workers | peak RSS serial / 2 workers / BP MB |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const c of r.cases) {
    const s1 = c.speedup['pipeline-1'];
    const s2 = c.speedup['pipeline-2'];
    const flag = (x: RoundRatio) => `${x.median}${x.unstable ? ' ⚠' : ''}`;
    out.push(
      `| ${short(c.model)} ${c.imageSize} b${c.batch} | ${c.modes.serial.imagesPerSecond} | ${c.modes['pipeline-1'].imagesPerSecond} (${s1.median}×) | ${c.modes['pipeline-2'].imagesPerSecond} (${s2.median}×) | ` +
        `${(s2.spread * 100).toFixed(0)}%${s2.unstable ? ' ⚠' : ''} | ${c.modes.bp.imagesPerSecond} | ${flag(c.vsBp.serial)} / ${flag(c.vsBp['pipeline-2'])} | ${c.modes.serial.peakRssMB} / ${c.modes['pipeline-2'].peakRssMB} / ${c.modes.bp.peakRssMB} |`,
    );
  }
  out.push('', '| case | model: cores → workers, speed-up over serial on the same cores |', '|---|---|');
  for (const c of r.cases) out.push(`| ${short(c.model)} ${c.imageSize} b${c.batch} | ${c.scaling.rows.map((m) => `${m.cores} → ${m.workers} workers ${m.speedup}×`).join('; ')} |`);
  return out.join('\n');
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const CASES: Record<string, ThroughputCase> = {
  cnnb: { model: 'builtin:cnnb', imageSize: 32, batch: 128 },
  resnet18: { model: 'builtin:resnet18', imageSize: 224, batch: 32 },
  'mobilenetv3-small': { model: 'builtin:mobilenetv3-small', imageSize: 224, batch: 32 },
};

if (process.argv[1] === ENTRY && !childMain(measurePipeline)) {
  const names = (arg('cases') ?? 'cnnb,resnet18,mobilenetv3-small').split(',');
  for (const n of names) if (!CASES[n]) throw new Error(`--cases: unknown case '${n}' (use ${Object.keys(CASES).join(', ')})`);
  const out = arg('out') ?? 'bench/results/pipeline.json';
  runPipelineBench({ cases: names.map((n) => CASES[n]!), threads: Number(arg('threads') ?? 2), rounds: Number(arg('rounds') ?? 2), reps: Number(arg('reps') ?? 4), warmup: Number(arg('warmup') ?? 1), out }).then((r) => {
    console.log(pipelineMarkdown(r));
    console.error(`written to ${out}`);
  });
}
