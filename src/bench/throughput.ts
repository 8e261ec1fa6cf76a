/**
 * Train-step throughput and memory (the paper's "time" and "memory" columns, measured
 * on the machine at hand).
 *
 * Speed: the machine drifts (other processes, thermal and frequency changes), so a ratio of
 * two runs made minutes apart means little. Each case therefore builds all its step variants
 * in ONE process and interleaves their steps — round r runs every variant once, in an order
 * rotated by r — and every ratio is the median of the per-round paired ratios, with its
 * interquartile spread; a ratio whose spread exceeds 10% is flagged. Variants:
 *  - forward: the original model's forward (inference) in one onnxruntime session;
 *  - a training variant: one minibatch through every block's train session (block forward →
 *    head → loss → in-block gradients → AdamW), chained as the trainer chains them — SFF
 *    (optionally with a cheaper head), BP (the whole network as one block through its own
 *    classifier), CwC-mod. Other ways of running the same training step (e.g. pipelined
 *    blocks) are further `VariantSpec` kinds built by `buildVariant`;
 *  - export: the deployable SFF model (network + every head) as inference, the bound SFF
 *    training is compared with (train ≈ 3 forwards of what is trained).
 * Beside each measured ratio stands the arithmetic one (MACs of the steps, arithmetic.ts).
 *
 * Memory: each (model, method, memory setting) in its own child process, so its peak
 * resident memory (OS high-water mark) is its own (`measure`).
 * The train sessions are built by the trainer's own code (`prepareModel`, `planStages`,
 * `blockLayout`, `buildTrainStep`, `BlockRunner`).
 *
 *   node dist/bench/throughput.js            # the default suite, JSON on stdout
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GradFormulations } from '../autodiff/index.js';
import type { Model } from '../ir/graph.js';
import { numElements } from '../ir/tensor.js';
import { probeShapes } from '../runtime/probe.js';
import { createSession, runtimeVersion, type RuntimeOptions, type Session } from '../runtime/session.js';
import { float32Tensor, int64Tensor, type Tensor } from '../runtime/tensors.js';
import type { HeadPoolSetting } from '../sff/head.js';
import type { ParamLayout } from '../blocks/params.js';
import { buildEvalGraph } from '../train/artifacts.js';
import type { BlockRunner } from '../train/runner.js';
import { loadModelSource, prepareModel, type PreparedModel } from '../train/model.js';
import { buildBlockRunner, initialWeights, planStages, type Stage } from '../train/stages.js';
import { resolveConfig, TRAIN_DEFAULTS, type Method, type RunConfig } from '../train/options.js';
import { buildExportModel } from '../export/exportModel.js';
import { stepArithmetic, type StepArithmetic } from './arithmetic.js';
import { childMain, hwmMB, maxRssMB, resetPeakRss, rssMB, runChild } from './child.js';
import { median, quantile, round } from '../util/stats.js';

export type ThroughputMode = 'forward' | Method;

export interface ThroughputCase {
  /** `builtin:<kind>` or a model path. */
  model: string;
  imageSize: number;
  batch: number;
}

/** How a training variant trains: the method and the options that change its step. */
export interface TrainSetup {
  method: Method;
  /** SFF's cheaper head (`--head-pool`); default off. */
  headPool?: HeadPoolSetting;
  /** Gradient formulations (default: the project's). */
  formulations?: Partial<GradFormulations>;
}

/**
 * One thing timed per step, by kind: the original model's forward, a training step
 * (`train`: the trainer's block sessions run one after another), or the exported SFF
 * model's inference (`export`). A new way of running the same training step (pipelined
 * blocks, another execution provider) is a new kind here and a case in `buildVariant`.
 */
export type VariantSpec =
  | { name: string; kind: 'forward' }
  | { name: string; kind: 'train'; setup: TrainSetup }
  | { name: string; kind: 'export'; setup: TrainSetup };

export interface MeasureSpec extends ThroughputCase {
  mode: ThroughputMode;
  memArena: boolean;
  /** Untimed steps first (the first run of a session plans and allocates its memory). */
  warmup: number;
  reps: number;
  classes?: number;
  threads?: number;
  /** Also run every block's eval session once at the batch size (as validation does). */
  withEval?: boolean;
  /** Write onnxruntime profiles and summarise kernel time by op type and graph part. */
  profile?: boolean;
  /** SFF's cheaper head (`--head-pool`). */
  headPool?: HeadPoolSetting;
  /** Gradient formulations (default: the project's). */
  formulations?: Partial<GradFormulations>;
}

export interface Measurement extends MeasureSpec {
  sessions: number;
  trainableParams: number;
  buildSeconds: number;
  /** Median and minimum wall time of one step (all sessions), ms. */
  msPerStep: number;
  msPerStepMin: number;
  /** Per-session median (ms) for sff/cwc blocks. */
  msPerSession: number[];
  imagesPerSecond: number;
  /** Resident memory before building anything (node + onnxruntime loaded), after building the sessions, and the peak. */
  rssStartMB: number;
  rssBuiltMB: number;
  rssEndMB: number;
  /** Peak of the whole process (OS high-water mark): building the graphs included (the shape probe runs a forward with every intermediate as an output). */
  peakRssMB: number;
  /** Peak while building, and peak of the steps alone (high-water mark reset after building; Linux), MB. */
  buildPeakRssMB: number;
  stepPeakRssMB: number;
  env: Record<string, string>;
  kernelProfile?: ProfileSummary;
}

export interface ProfileSummary {
  /** Kernel time per op type, ms per step (top entries). */
  byOp: Record<string, number>;
  /** Kernel time by part of the train graph: forward, head/loss, gradient, optimizer, unpack/pack. */
  byPart: Record<string, number>;
  totalKernelMsPerStep: number;
}

/** A reproducible input in [−1, 1) for timing runs (an LCG: speed, not statistics). */
export function randomInput(n: number, seed = 1): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 31 - 1;
  }
  return a;
}

/** A run configuration for `planStages` (the parts it reads, the rest at the trainer's defaults; the learning rate is the from-scratch one). */
export function benchRunConfig(method: Method, classes: number, imageSize: number, batch: number, fromScratch = true): RunConfig {
  const model = { imageSize: [imageSize, imageSize] as [number, number], fromScratch, shortName: '', blocks: [] };
  const names = Array.from({ length: classes }, (_, i) => `c${i}`);
  const opts = { model: '', data: '', method, epochs: 1, batchSize: batch, lr: TRAIN_DEFAULTS.lr.fromScratch, ensemble: 'all' };
  return { ...resolveConfig(opts, model, names), out: '' };
}

function summariseProfiles(files: string[], steps: number): ProfileSummary {
  const byOp: Record<string, number> = {};
  const byPart: Record<string, number> = {};
  let total = 0;
  for (const f of files) {
    const events = JSON.parse(readFileSync(f, 'utf8')) as { cat?: string; name?: string; dur?: number; args?: { op_name?: string } }[];
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time') || !e.dur) continue;
      const ms = e.dur / 1000;
      const op = e.args?.op_name ?? '?';
      const node = e.name.slice(0, -'_kernel_time'.length);
      const part = /^\/grad|\/grad\//.test(node)
        ? 'gradient'
        : /adamw/i.test(node)
          ? 'optimizer'
          : /unpack|\/pack\//.test(node)
            ? 'unpack/pack'
            : /\/sff\/|sff\.block|cwc|probe|loss/i.test(node)
              ? 'head/loss'
              : 'forward';
      byOp[op] = (byOp[op] ?? 0) + ms;
      byPart[part] = (byPart[part] ?? 0) + ms;
      total += ms;
    }
  }
  const per = (r: Record<string, number>) =>
    Object.fromEntries(
      Object.entries(r)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 14)
        .map(([k, v]) => [k, Math.round((v / steps) * 10) / 10]),
    );
  return { byOp: per(byOp), byPart: per(byPart), totalKernelMsPerStep: Math.round((total / steps) * 10) / 10 };
}

/** What building a variant gives: one step at the case's batch, its sessions and its arithmetic. */
export interface BuiltVariant {
  step(): Promise<void>;
  sessions: Session[];
  trainableParams: number;
  /** MACs per image of one step (arithmetic.ts). */
  arithmetic: StepArithmetic;
  /** Per-session wall time of each step so far (ms), for variants with several sessions. */
  sessionTimes: number[][];
  /** Runs after the timed steps (e.g. the eval sessions once, as validation does). */
  afterTiming?: () => Promise<void>;
}

export interface BuildEnv {
  classes: number;
  /** Runtime options of the session named `tag` (threads, arena, profiling). */
  options(tag: string): RuntimeOptions;
  withEval?: boolean;
}

const modelSource = (m: string) => (m.startsWith('builtin:') || m.includes('/') || m.endsWith('.onnx') ? m : `builtin:${m}`);

/** A training method's stages with their initial weights, as the trainer plans them. */
interface PlannedStage extends Stage {
  layout: ParamLayout;
  init: Float32Array;
  state: Map<string, Float32Array>;
}

async function planBench(c: ThroughputCase, setup: TrainSetup, classes: number): Promise<{ pm: PreparedModel; cfg: RunConfig; stages: PlannedStage[] }> {
  const pm = await prepareModel(modelSource(c.model), { imageSize: c.imageSize });
  const cfg: RunConfig = { ...benchRunConfig(setup.method, classes, c.imageSize, c.batch, pm.fromScratch), ...(setup.headPool ? { headPool: setup.headPool } : {}) };
  const stages = planStages(pm, cfg).map((st): PlannedStage => {
    const w = initialWeights(st);
    return { ...st, layout: w.layout, init: w.params, state: w.state };
  });
  return { pm, cfg, stages };
}

/** Per-image arithmetic of a model's forward (nothing trained) from its shapes at batch 1. */
async function forwardArithmetic(model: Model): Promise<StepArithmetic> {
  return stepArithmetic(model.graph, await probeShapes(model, { batch: 1 }), new Set());
}

/** Per-image arithmetic of a training method's step: each stage's eval graph (block + objective), differentiated w.r.t. its layout. */
async function trainArithmetic(stages: PlannedStage[], classes: number): Promise<StepArithmetic> {
  let forward = 0;
  let train = 0;
  for (const st of stages) {
    const model = buildEvalGraph(st.block, st.objective, st.layout, classes);
    const a = stepArithmetic(model.graph, await probeShapes(model, { batch: 1 }), new Set(st.layout.entries.map((e) => e.name)));
    forward += a.forward;
    train += a.train;
  }
  return { forward, train };
}

/** A variant's per-image arithmetic alone (no sessions built): the MACs column of the tables. */
export async function variantArithmetic(spec: VariantSpec, c: ThroughputCase, classes = 10): Promise<StepArithmetic> {
  if (spec.kind === 'forward') return forwardArithmetic(loadModelSource(modelSource(c.model), { imageSize: c.imageSize, classes }).model);
  const { pm, cfg, stages } = await planBench(c, spec.setup, classes);
  return spec.kind === 'export' ? forwardArithmetic(exportModelOf(pm, cfg, stages)) : trainArithmetic(stages, classes);
}

/** The deployable model as `finetune` writes it, with the stages' initial weights (inference cost does not depend on their values). */
function exportModelOf(pm: PreparedModel, cfg: RunConfig, stages: PlannedStage[]): Model {
  return buildExportModel({
    inputName: pm.inputName,
    inputShape: pm.inputShape,
    blocks: stages.map((st) => ({ block: st.block, objective: st.objective, layout: st.layout, params: st.init, state: st.state })),
    weights: stages.map(() => 1),
    classes: cfg.classes,
    preprocess: { size: pm.imageSize, mean: [0, 0, 0], std: [1, 1, 1] },
  });
}

/** Builds one variant's sessions for case `c`. */
export async function buildVariant(spec: VariantSpec, c: ThroughputCase, env: BuildEnv): Promise<BuiltVariant> {
  const B = c.batch;
  const J = env.classes;
  const inputOf = (dims: number[]) => float32Tensor(randomInput(B * numElements(dims)), [B, ...dims]);
  if (spec.kind === 'forward') {
    const { model } = loadModelSource(modelSource(c.model), { imageSize: c.imageSize, classes: J });
    const input = model.graph.inputs.find((i) => !model.graph.initializers.has(i.name))!;
    const session = await createSession(model, env.options(spec.name));
    const x = inputOf([3, c.imageSize, c.imageSize]);
    return { step: async () => void (await session.run({ [input.name]: x })), sessions: [session], trainableParams: 0, arithmetic: await forwardArithmetic(model), sessionTimes: [] };
  }
  const { pm, cfg, stages } = await planBench(c, spec.setup, J);
  const x0 = inputOf(pm.inputShape);
  if (spec.kind === 'export') {
    const model = exportModelOf(pm, cfg, stages);
    const session = await createSession(model, env.options(spec.name));
    return { step: async () => void (await session.run({ [pm.inputName]: x0 })), sessions: [session], trainableParams: 0, arithmetic: await forwardArithmetic(model), sessionTimes: [] };
  }
  // The trainer's own runner per stage (train-step graph, sessions, packed weights).
  const runners: BlockRunner[] = [];
  for (const st of stages)
    runners.push(
      await buildBlockRunner(st, {
        classes: J,
        batchSize: B,
        lr: cfg.lr,
        withEval: env.withEval ?? false,
        runtime: env.options(`${spec.name}_block`),
        ...(spec.setup.formulations ? { formulations: spec.setup.formulations } : {}),
      }),
    );
  const trainableParams = runners.reduce((a, r) => a + r.layout.total, 0);
  const sessions = [...runners.map((r) => r.sessions.train!), ...runners.flatMap((r) => (r.sessions.eval ? [r.sessions.eval] : []))];
  const labels = int64Tensor(BigInt64Array.from({ length: B }, (_, i) => BigInt(i % J)), [B]);
  const sessionTimes: number[][] = [];
  const step = async () => {
    let x: Tensor = x0;
    const times: number[] = [];
    for (const r of runners) {
      const ts = performance.now();
      const out = await r.trainStep(x, labels);
      times.push(performance.now() - ts);
      x = out.next;
    }
    sessionTimes.push(times);
  };
  const afterTiming = env.withEval
    ? async () => {
        let x: Tensor = x0;
        for (const r of runners) x = (await r.evaluate(x)).next;
      }
    : undefined;
  return { step, sessions, trainableParams, arithmetic: await trainArithmetic(stages, J), sessionTimes, ...(afterTiming ? { afterTiming } : {}) };
}

function variantOfMode(spec: MeasureSpec): VariantSpec {
  if (spec.mode === 'forward') return { name: 'forward', kind: 'forward' };
  return { name: spec.mode, kind: 'train', setup: { method: spec.mode, ...(spec.headPool ? { headPool: spec.headPool } : {}), ...(spec.formulations ? { formulations: spec.formulations } : {}) } };
}

/** One measurement, in this process (the memory matrix and the profiles: one variant per process). */
export async function measure(spec: MeasureSpec): Promise<Measurement> {
  const rssStartMB = rssMB();
  const rt: RuntimeOptions = { memArena: spec.memArena, ...(spec.threads ? { threads: spec.threads } : {}) };
  const profileDir = spec.profile ? mkdtempSync(join(tmpdir(), 'sff-profile-')) : undefined;
  const env: BuildEnv = {
    classes: spec.classes ?? 10,
    options: (tag) => ({ ...rt, ...(profileDir ? { profilePrefix: join(profileDir, tag) } : {}) }),
    ...(spec.withEval ? { withEval: true } : {}),
  };
  const t0 = performance.now();
  const v = await buildVariant(variantOfMode(spec), spec, env);
  const buildSeconds = (performance.now() - t0) / 1000;
  const rssBuiltMB = rssMB();
  const buildPeakRssMB = hwmMB();
  const reset = resetPeakRss();
  for (let i = 0; i < spec.warmup; i++) await v.step();
  v.sessionTimes.length = 0;
  const totals: number[] = [];
  for (let i = 0; i < spec.reps; i++) {
    const ts = performance.now();
    await v.step();
    totals.push(performance.now() - ts);
  }
  await v.afterTiming?.();
  const msPerStep = median(totals);
  let profile: ProfileSummary | undefined;
  if (profileDir) {
    for (const s of v.sessions) s.endProfiling();
    const files = readdirSync(profileDir).filter((f) => f.endsWith('.json')).map((f) => join(profileDir, f));
    profile = summariseProfiles(files, spec.warmup + spec.reps);
    rmSync(profileDir, { recursive: true, force: true });
  }
  const result: Measurement = {
    ...spec,
    sessions: v.sessions.length,
    trainableParams: v.trainableParams,
    buildSeconds: round(buildSeconds, 1),
    msPerStep: round(msPerStep, 1),
    msPerStepMin: round(Math.min(...totals), 1),
    msPerSession: perSessionMedians(v.sessionTimes),
    imagesPerSecond: round((spec.batch * 1000) / msPerStep, 1),
    rssStartMB: round(rssStartMB),
    rssBuiltMB: round(rssBuiltMB),
    rssEndMB: round(rssMB()),
    peakRssMB: round(Math.max(maxRssMB(), buildPeakRssMB || 0)),
    buildPeakRssMB: round(buildPeakRssMB),
    stepPeakRssMB: reset ? round(hwmMB()) : NaN,
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('MALLOC_')) as [string, string][]),
    ...(profile ? { kernelProfile: profile } : {}),
  };
  await Promise.all(v.sessions.map((s) => s.release()));
  return result;
}

function perSessionMedians(times: number[][]): number[] {
  return times.length ? times[0]!.map((_, k) => round(median(times.map((t) => t[k]!)), 1)) : [];
}

/** A ratio of two variants' speeds: img/s of `num` ÷ (img/s of `den` ÷ `divisor`). */
export interface RatioSpec {
  name: string;
  num: string;
  den: string;
  /** 3 for "÷ (inference ÷ 3)", 1 for a plain speed ratio. */
  divisor: number;
  /** The target, when the issue sets one (reported, never asserted). */
  target?: string;
}

export interface InterleavedSpec extends ThroughputCase {
  /** --device (default cpu): graphs are built for its execution provider. */
  device?: string;
  variants: VariantSpec[];
  ratios: RatioSpec[];
  memArena: boolean;
  threads?: number;
  classes?: number;
  warmup: number;
  /** At least this many rounds; then stop once no ratio is flagged, or at maxRounds / maxSeconds. */
  minRounds: number;
  maxRounds: number;
  maxSeconds: number;
}

/** A ratio's spread above which the bench flags it as not meaningful on this run. */
export const SPREAD_FLAG = 0.1;

export interface VariantTiming {
  name: string;
  kind: VariantSpec['kind'];
  sessions: number;
  trainableParams: number;
  arithmetic: StepArithmetic;
  buildSeconds: number;
  /** Wall time of one step, ms: median, quartiles, fastest. */
  msMedian: number;
  msQ1: number;
  msQ3: number;
  msMin: number;
  imagesPerSecond: number;
  /** Per-session median (ms) for variants with several sessions. */
  msPerSession: number[];
}

export interface RatioResult extends RatioSpec {
  /** Median of the per-round paired ratios, its quartiles, and spread = (Q3 − Q1) ÷ median. */
  median: number;
  q1: number;
  q3: number;
  spread: number;
  /** Spread over SPREAD_FLAG: this run cannot tell the ratio to better than that. */
  flagged: boolean;
  /** The same ratio from each side's fastest step. */
  fromFastest: number;
  /** The ratio the MACs alone would give (every kernel at equal speed). */
  arithmetic: number;
}

export interface InterleavedResult {
  case: ThroughputCase;
  threads?: number;
  rounds: number;
  variants: VariantTiming[];
  ratios: RatioResult[];
  seconds: number;
}

/** Per-round paired ratios → median, quartiles, spread, flag. */
export function ratioStats(perRound: readonly number[]): Pick<RatioResult, 'median' | 'q1' | 'q3' | 'spread' | 'flagged'> {
  const m = median(perRound);
  const q1 = quantile(perRound, 0.25);
  const q3 = quantile(perRound, 0.75);
  const spread = (q3 - q1) / m;
  return { median: round(m, 3), q1: round(q1, 3), q3: round(q3, 3), spread: round(spread, 3), flagged: !(spread <= SPREAD_FLAG) };
}

/** Builds every variant of a case in this process, then interleaves their steps round by round. */
export async function measureInterleaved(spec: InterleavedSpec, log: (s: string) => void = () => {}): Promise<InterleavedResult> {
  const t0 = performance.now();
  const rt: RuntimeOptions = { memArena: spec.memArena, ...(spec.threads ? { threads: spec.threads } : {}), ...(spec.device ? { device: spec.device } : {}) };
  const env: BuildEnv = { classes: spec.classes ?? 10, options: () => rt };
  const built: { v: VariantSpec; b: BuiltVariant; buildSeconds: number; ms: number[] }[] = [];
  for (const v of spec.variants) {
    const tb = performance.now();
    const b = await buildVariant(v, spec, env);
    built.push({ v, b, buildSeconds: (performance.now() - tb) / 1000, ms: [] });
  }
  for (const x of built) for (let i = 0; i < spec.warmup; i++) await x.b.step();
  for (const x of built) x.b.sessionTimes.length = 0;
  const index = new Map(built.map((x, i) => [x.v.name, i]));
  for (const r of spec.ratios)
    if (!index.has(r.num) || !index.has(r.den)) throw new Error(`throughput: ratio '${r.name}' names a variant that is not measured (${r.num}, ${r.den})`);
  const perRound = (r: RatioSpec) => {
    const a = built[index.get(r.num)!]!.ms;
    const b = built[index.get(r.den)!]!.ms;
    return a.map((t, k) => (r.divisor * b[k]!) / t);
  };
  let rounds = 0;
  const tStart = performance.now();
  for (;;) {
    // Rotating the order spreads position effects (caches, a neighbour's burst) over all variants.
    for (let k = 0; k < built.length; k++) {
      const x = built[(k + rounds) % built.length]!;
      const ts = performance.now();
      await x.b.step();
      x.ms.push(performance.now() - ts);
    }
    rounds++;
    const elapsed = (performance.now() - tStart) / 1000;
    if (rounds >= spec.maxRounds || (rounds >= spec.minRounds && elapsed >= spec.maxSeconds)) break;
    if (rounds >= spec.minRounds && spec.ratios.every((r) => !ratioStats(perRound(r)).flagged)) break;
  }
  for (const x of built) await x.b.afterTiming?.();
  const variants: VariantTiming[] = built.map(({ v, b, buildSeconds, ms }) => ({
    name: v.name,
    kind: v.kind,
    sessions: b.sessions.length,
    trainableParams: b.trainableParams,
    arithmetic: { forward: Math.round(b.arithmetic.forward), train: Math.round(b.arithmetic.train) },
    buildSeconds: round(buildSeconds, 1),
    msMedian: round(median(ms), 1),
    msQ1: round(quantile(ms, 0.25), 1),
    msQ3: round(quantile(ms, 0.75), 1),
    msMin: round(Math.min(...ms), 1),
    imagesPerSecond: round((spec.batch * 1000) / median(ms), 1),
    msPerSession: perSessionMedians(b.sessionTimes),
  }));
  // A step's arithmetic: train MACs for training variants, forward MACs for inference ones.
  const macs = (name: string) => {
    const x = built[index.get(name)!]!;
    return x.v.kind === 'train' ? x.b.arithmetic.train : x.b.arithmetic.forward;
  };
  const fastest = (name: string) => Math.min(...built[index.get(name)!]!.ms);
  const ratios: RatioResult[] = spec.ratios.map((r) => ({
    ...r,
    ...ratioStats(perRound(r)),
    fromFastest: round((r.divisor * fastest(r.den)) / fastest(r.num), 3),
    arithmetic: round((r.divisor * macs(r.den)) / macs(r.num), 3),
  }));
  for (const x of built) await Promise.all(x.b.sessions.map((s) => s.release()));
  const result: InterleavedResult = { case: { model: spec.model, imageSize: spec.imageSize, batch: spec.batch }, ...(spec.threads ? { threads: spec.threads } : {}), rounds, variants, ratios, seconds: round((performance.now() - t0) / 1000, 1) };
  log(speedLine(result));
  return result;
}

/** One log line: a case's rounds and its ratios with spread and arithmetic. */
function speedLine(r: InterleavedResult): string {
  const c = r.case;
  return `  ${short(c.model)} ${c.imageSize}px b${c.batch}: ${r.rounds} interleaved rounds; ` + r.ratios.map((x) => `${x.name} ${x.median.toFixed(2)} ±${(100 * x.spread).toFixed(0)}%${x.flagged ? ' (flagged)' : ''} [MACs ${x.arithmetic.toFixed(2)}]`).join(', ');
}

const ENTRY = fileURLToPath(import.meta.url);

type ChildPayload = { interleaved: InterleavedSpec } | MeasureSpec;

async function childTask(p: ChildPayload): Promise<Measurement | InterleavedResult> {
  return 'interleaved' in p ? measureInterleaved(p.interleaved) : measure(p);
}

/** One measurement in its own child process. */
export function measureInChild(spec: MeasureSpec, env: Record<string, string> = {}, timeoutSeconds = 900): Promise<Measurement> {
  return runChild<Measurement>(ENTRY, spec, { env, timeoutSeconds });
}

/** One case's interleaved variants in their own child process (sessions and memory released after). */
export function measureInterleavedInChild(spec: InterleavedSpec, timeoutSeconds = 3600): Promise<InterleavedResult> {
  return runChild<InterleavedResult>(ENTRY, { interleaved: spec }, { timeoutSeconds });
}

/** glibc malloc tunables that keep freed memory for reuse instead of returning (and re-faulting) it. */
export const GLIBC_KEEP = { MALLOC_MMAP_THRESHOLD_: '33554432', MALLOC_TRIM_THRESHOLD_: '100000000000', MALLOC_TOP_PAD_: '1000000000' };

/** The default variants: forward, BP, SFF with the paper's head and with the cheaper head, and the exported SFF model. */
export function defaultVariants(opts: { headPool?: HeadPoolSetting; cwc?: boolean } = {}): { variants: VariantSpec[]; ratios: RatioSpec[] } {
  const pool = opts.headPool ?? 'auto';
  const cheap = `sff head-pool ${pool}`;
  const variants: VariantSpec[] = [
    { name: 'forward', kind: 'forward' },
    { name: 'bp', kind: 'train', setup: { method: 'bp' } },
    { name: 'sff', kind: 'train', setup: { method: 'sff' } },
    { name: cheap, kind: 'train', setup: { method: 'sff', headPool: pool } },
    { name: 'sff export', kind: 'export', setup: { method: 'sff' } },
    ...(opts.cwc ? [{ name: 'cwc', kind: 'train' as const, setup: { method: 'cwc' as const } }] : []),
  ];
  const ratios: RatioSpec[] = [
    { name: 'SFF ÷ BP', num: 'sff', den: 'bp', divisor: 1, target: '≥ 0.95 on ResNet18 224 b32; ≥ 0.9 × arithmetic on CNNB and MobileNetV3-small' },
    { name: `SFF (head-pool ${pool}) ÷ BP`, num: cheap, den: 'bp', divisor: 1, target: '≥ 1 (if accuracy holds within 0.5 points)' },
    { name: 'SFF ÷ (forward ÷ 3)', num: 'sff', den: 'forward', divisor: 3 },
    { name: 'SFF ÷ (exported SFF ÷ 3)', num: 'sff', den: 'sff export', divisor: 3, target: '≥ 0.5' },
    { name: 'BP ÷ (forward ÷ 3)', num: 'bp', den: 'forward', divisor: 3 },
  ];
  return { variants, ratios };
}

export interface ThroughputOptions {
  cases?: ThroughputCase[];
  /** Include CwC-mod in the speed table. */
  cwc?: boolean;
  /** The cheaper head measured beside the paper's (default auto). */
  headPool?: HeadPoolSetting;
  warmup?: number;
  minRounds?: number;
  maxRounds?: number;
  /** Stop a case's rounds after this long (once minRounds are done). */
  maxSecondsPerCase?: number;
  threads?: number;
  /** --device for every measurement (default cpu). */
  device?: string;
  /** Run the ResNet18 memory matrix (sff/bp × arena on/off × glibc tunables). */
  memory?: boolean;
  /** Profile the SFF and BP steps of the first case (kernel time by op type). */
  profile?: boolean;
  log?: (s: string) => void;
}

export interface ThroughputReport {
  machine: { cpus: number; node: string; ort: string | undefined; loadAverage: number[] };
  /** Speed: one interleaved measurement per case. */
  speed: InterleavedResult[];
  memory: Measurement[];
  profiles: Measurement[];
  seconds: number;
}

export const DEFAULT_CASES: ThroughputCase[] = [
  { model: 'builtin:resnet18', imageSize: 224, batch: 32 },
  { model: 'builtin:mobilenetv3-small', imageSize: 224, batch: 32 },
  { model: 'builtin:cnnb', imageSize: 32, batch: 128 },
];

export async function runThroughput(opts: ThroughputOptions = {}): Promise<ThroughputReport> {
  const t0 = performance.now();
  const os = await import('node:os');
  const loadAverage = os.loadavg().map((v) => round(v, 2));
  const log = opts.log ?? ((s: string) => console.error(s));
  const warmup = opts.warmup ?? 1;
  const { variants, ratios } = defaultVariants({ ...(opts.headPool ? { headPool: opts.headPool } : {}), ...(opts.cwc ? { cwc: true } : {}) });
  const speed: InterleavedResult[] = [];
  for (const c of opts.cases ?? DEFAULT_CASES) {
    const r = await measureInterleavedInChild({
      ...c,
      variants,
      ratios,
      // The trainer's default (one session per block, no per-session arena); it also keeps the
      // process that holds every variant at once within memory on a shared machine.
      memArena: false,
      ...(opts.threads ? { threads: opts.threads } : {}),
      ...(opts.device ? { device: opts.device } : {}),
      warmup,
      minRounds: opts.minRounds ?? 7,
      maxRounds: opts.maxRounds ?? 21,
      maxSeconds: opts.maxSecondsPerCase ?? 600,
    });
    log(speedLine(r));
    speed.push(r);
  }
  const one = async (c: ThroughputCase, mode: ThroughputMode, memArena = true, env: Record<string, string> = {}, extra: Partial<MeasureSpec> = {}) => {
    const m = await measureInChild({ ...c, mode, memArena, warmup, reps: 4, ...(opts.threads ? { threads: opts.threads } : {}), ...extra }, env);
    log(
      `  ${short(c.model)} ${c.imageSize}px b${c.batch} ${mode.padEnd(7)} arena ${memArena ? 'on ' : 'off'}${Object.keys(env).length ? ' +glibc' : ''}  ` +
        `${m.msPerStep.toFixed(0)} ms/step  peak RSS ${m.peakRssMB} MB (steps ${m.stepPeakRssMB}, built ${m.rssBuiltMB}, start ${m.rssStartMB})  build ${m.buildSeconds}s`,
    );
    return m;
  };
  const memory: Measurement[] = [];
  if (opts.memory ?? true) {
    const c: ThroughputCase = { model: 'builtin:resnet18', imageSize: 224, batch: 32 };
    for (const mode of ['sff', 'bp'] as const) {
      memory.push(await one(c, mode, true));
      memory.push(await one(c, mode, false));
      memory.push(await one(c, mode, false, GLIBC_KEEP));
    }
  }
  const profiles: Measurement[] = [];
  if (opts.profile) {
    const c = (opts.cases ?? DEFAULT_CASES)[0]!;
    for (const mode of ['sff', 'bp'] as const) profiles.push(await one(c, mode, true, {}, { profile: true, warmup: 1, reps: 2 }));
  }
  return {
    machine: { cpus: os.cpus().length, node: process.version, ort: runtimeVersion(), loadAverage },
    speed,
    memory,
    profiles,
    seconds: round((performance.now() - t0) / 1000, 1),
  };
}

const mb = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(0));
const short = (m: string) => m.replace('builtin:', '').replace(/^.*\//, '').replace(/\.onnx$/, '');
const gmacs = (v: number) => (v / 1e9 >= 0.1 ? `${(v / 1e9).toFixed(2)} G` : `${(v / 1e6).toFixed(1)} M`);

/** Markdown tables of a throughput report. */
export function throughputMarkdown(r: ThroughputReport): string {
  const lines: string[] = [];
  lines.push(
    `Speed: every variant of a case built in one process, steps interleaved round by round (order rotated each round); ` +
      `img/s from the median step; ratios are medians of the per-round paired ratios, ± their interquartile spread ÷ median, ` +
      `⚠ where that spread is over ${100 * SPREAD_FLAG}%. MACs: per image, convolutions and matrix products (train = forward + weight + input gradients, src/bench/arithmetic.ts). ` +
      `Load average when the suite started: ${r.machine.loadAverage.join(' / ')} on ${r.machine.cpus} CPUs.`,
    '',
  );
  for (const s of r.speed) {
    lines.push(`**${short(s.case.model)} ${s.case.imageSize}×${s.case.imageSize} b${s.case.batch}** (${s.rounds} rounds${s.threads ? `, ${s.threads} threads` : ''}):`, '');
    lines.push('| variant | img/s (median) | ms/step median [Q1–Q3] (fastest) | MACs/image of the step | sessions |', '|---|---|---|---|---|');
    for (const v of s.variants)
      lines.push(`| ${v.name} | ${v.imagesPerSecond.toFixed(1)} | ${v.msMedian.toFixed(0)} [${v.msQ1.toFixed(0)}–${v.msQ3.toFixed(0)}] (${v.msMin.toFixed(0)}) | ${gmacs(v.kind === 'train' ? v.arithmetic.train : v.arithmetic.forward)} | ${v.sessions} |`);
    lines.push('', '| ratio | measured (median ± spread) | from fastest steps | arithmetic (MACs) | measured ÷ arithmetic | target |', '|---|---|---|---|---|---|');
    for (const x of s.ratios)
      lines.push(
        `| ${x.name} | ${x.median.toFixed(2)} ±${(100 * x.spread).toFixed(0)}%${x.flagged ? ' ⚠' : ''} | ${x.fromFastest.toFixed(2)} | ${x.arithmetic.toFixed(2)} | ${(x.median / x.arithmetic).toFixed(2)} | ${x.target ?? ''} |`,
      );
    const split = s.variants.filter((v) => v.msPerSession.length > 1);
    if (split.length) lines.push('', ...split.map((v) => `- ${v.name}, ms per block session (median): ${v.msPerSession.join(' / ')}`));
    lines.push('');
  }
  if (r.memory.length) {
    lines.push('| ResNet18 224 b32 | CPU arena | glibc keep-memory tunables | sessions | peak RSS MB, steps | peak RSS MB, process | peak while building | RSS after build | ms/step (min) |', '|---|---|---|---|---|---|---|---|---|');
    for (const m of r.memory)
      lines.push(`| ${m.mode.toUpperCase()} | ${m.memArena ? 'on' : 'off'} | ${Object.keys(m.env).length ? 'yes' : 'no'} | ${m.sessions} | ${mb(m.stepPeakRssMB)} | ${mb(m.peakRssMB)} | ${mb(m.buildPeakRssMB)} | ${mb(m.rssBuiltMB)} | ${m.msPerStep.toFixed(0)} (${m.msPerStepMin.toFixed(0)}) |`);
    const get = (mode: string, arena: boolean, glibc: boolean) => r.memory.find((m) => m.mode === mode && m.memArena === arena && Object.keys(m.env).length > 0 === glibc);
    const bpOn = get('bp', true, false);
    const low = r.memory.filter((m) => m.mode === 'sff').sort((a, b) => a.stepPeakRssMB - b.stepPeakRssMB)[0];
    const fixed2 = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '–');
    const ratio = (s: Measurement, b: Measurement) => `${fixed2(s.stepPeakRssMB / b.stepPeakRssMB)} (process ${fixed2(s.peakRssMB / b.peakRssMB)})`;
    if (bpOn && low)
      lines.push(
        '',
        `SFF ÷ BP peak RSS of the steps: lowest SFF setting vs BP with the arena on ${ratio(low, bpOn)}; same settings for both: ` +
          [true, false].map((a) => { const s = get('sff', a, false); const b = get('bp', a, false); return s && b ? `arena ${a ? 'on' : 'off'} ${ratio(s, b)}` : ''; }).filter(Boolean).join(', ') + '.',
      );
  }
  for (const p of r.profiles)
    if (p.kernelProfile)
      lines.push(
        '',
        `Profile, ${short(p.model)} ${p.imageSize} b${p.batch} ${p.mode.toUpperCase()} step (onnxruntime kernel time, ms per step; total ${p.kernelProfile.totalKernelMsPerStep}):`,
        '',
        `- by part: ${Object.entries(p.kernelProfile.byPart).map(([k, v]) => `${k} ${v}`).join(', ')}`,
        `- by op: ${Object.entries(p.kernelProfile.byOp).map(([k, v]) => `${k} ${v}`).join(', ')}`,
      );
  return lines.join('\n') + '\n';
}

if (process.argv[1] === ENTRY && !childMain(childTask)) {
  runThroughput({ profile: process.argv.includes('--profile') }).then(
    (r) => console.log(JSON.stringify(r, null, 2) + '\n' + throughputMarkdown(r)),
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
