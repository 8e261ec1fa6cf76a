/**
 * Train-step throughput and memory (the paper's "time" and "memory" columns, measured
 * on the machine at hand): images/s of
 *  - forward: the original model's forward (inference) in one onnxruntime session;
 *  - sff: one minibatch through every block's train session (block forward → head →
 *    loss → in-block gradients → AdamW), chained as the trainer chains them;
 *  - bp: the whole network as one block through its own (J-way) classifier;
 *  - cwc: CwC-mod blocks plus the linear probe (optional).
 * The train sessions are built by the trainer's own code (`prepareModel`, `planStages`,
 * `blockLayout`, `buildTrainStep`, `BlockRunner`). Every measurement runs in its own
 * child process, so its peak resident memory (OS high-water mark) is its own.
 *
 *   node dist/bench/throughput.js            # the default suite, JSON on stdout
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BlockRunner } from '../train/runner.js';
import { createSession, runtimeVersion, type RuntimeOptions, type Session } from '../runtime/session.js';
import { float32Tensor, int64Tensor, type Tensor } from '../runtime/tensors.js';
import { numElements } from '../ir/tensor.js';
import { loadModelSource, prepareModel } from '../train/model.js';
import { buildBlockRunner, planStages } from '../train/stages.js';
import { resolveConfig, TRAIN_DEFAULTS, type Method, type RunConfig } from '../train/options.js';
import { childMain, hwmMB, maxRssMB, resetPeakRss, rssMB, runChild } from './child.js';

export type ThroughputMode = 'forward' | Method;

export interface ThroughputCase {
  /** `builtin:<kind>` or a model path. */
  model: string;
  imageSize: number;
  batch: number;
}

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

function randomInput(n: number, seed = 1): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 31 - 1;
  }
  return a;
}

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
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

/** One measurement, in this process. */
export async function measure(spec: MeasureSpec): Promise<Measurement> {
  const rssStartMB = rssMB();
  const J = spec.classes ?? 10;
  const rt: RuntimeOptions = { memArena: spec.memArena, ...(spec.threads ? { threads: spec.threads } : {}) };
  const profileDir = spec.profile ? mkdtempSync(join(tmpdir(), 'sff-profile-')) : undefined;
  const options = (tag: string): RuntimeOptions => ({ ...rt, ...(profileDir ? { profilePrefix: join(profileDir, tag) } : {}) });
  const source = spec.model.startsWith('builtin:') || spec.model.includes('/') || spec.model.endsWith('.onnx') ? spec.model : `builtin:${spec.model}`;
  const B = spec.batch;
  const t0 = performance.now();
  const sessionTimes: number[][] = [];
  const totals: number[] = [];
  let step: () => Promise<void>;
  let sessions: Session[] = [];
  let trainableParams = 0;
  let afterTiming: () => Promise<void> = async () => {};

  if (spec.mode === 'forward') {
    const { model } = loadModelSource(source, { imageSize: spec.imageSize, classes: J });
    const input = model.graph.inputs.find((i) => !model.graph.initializers.has(i.name))!;
    const session = await createSession(model, options('forward'));
    sessions = [session];
    const x = float32Tensor(randomInput(B * 3 * spec.imageSize * spec.imageSize), [B, 3, spec.imageSize, spec.imageSize]);
    step = async () => {
      await session.run({ [input.name]: x });
    };
  } else {
    const pm = await prepareModel(source, { imageSize: spec.imageSize });
    const cfg = benchRunConfig(spec.mode, J, spec.imageSize, B, pm.fromScratch);
    const runners: BlockRunner[] = [];
    for (const stage of planStages(pm, cfg)) {
      const runner = await buildBlockRunner(stage, { classes: J, batchSize: B, lr: cfg.lr, withEval: spec.withEval ?? false, runtime: profileDir ? { ...rt, profilePrefix: join(profileDir, 'block_') } : rt });
      runners.push(runner);
      trainableParams += runner.layout.total;
    }
    sessions.push(...runners.map((r) => r.sessions.train!), ...runners.flatMap((r) => (r.sessions.eval ? [r.sessions.eval] : [])));
    const dims = pm.inputShape;
    const x0 = float32Tensor(randomInput(B * numElements(dims)), [B, ...dims]);
    const labels = int64Tensor(BigInt64Array.from({ length: B }, (_, i) => BigInt(i % J)), [B]);
    step = async () => {
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
    if (spec.withEval)
      afterTiming = async () => {
        let x: Tensor = x0;
        for (const r of runners) x = (await r.evaluate(x)).next;
      };
  }
  const buildSeconds = (performance.now() - t0) / 1000;
  const rssBuiltMB = rssMB();
  const buildPeakRssMB = hwmMB();
  const reset = resetPeakRss();
  for (let i = 0; i < spec.warmup; i++) await step();
  sessionTimes.length = 0;
  for (let i = 0; i < spec.reps; i++) {
    const ts = performance.now();
    await step();
    totals.push(performance.now() - ts);
  }
  await afterTiming();
  const msPerStep = median(totals);
  let profile: ProfileSummary | undefined;
  if (profileDir) {
    for (const s of sessions) s.endProfiling();
    const files = readdirSync(profileDir).filter((f) => f.endsWith('.json')).map((f) => join(profileDir, f));
    profile = summariseProfiles(files, spec.warmup + spec.reps);
    rmSync(profileDir, { recursive: true, force: true });
  }
  const result: Measurement = {
    ...spec,
    sessions: sessions.length,
    trainableParams,
    buildSeconds: round(buildSeconds, 1),
    msPerStep: round(msPerStep, 1),
    msPerStepMin: round(Math.min(...totals), 1),
    msPerSession: sessionTimes.length ? sessionTimes[0]!.map((_, k) => round(median(sessionTimes.map((t) => t[k]!)), 1)) : [],
    imagesPerSecond: round((B * 1000) / msPerStep, 1),
    rssStartMB: round(rssStartMB),
    rssBuiltMB: round(rssBuiltMB),
    rssEndMB: round(rssMB()),
    peakRssMB: round(Math.max(maxRssMB(), buildPeakRssMB || 0)),
    buildPeakRssMB: round(buildPeakRssMB),
    stepPeakRssMB: reset ? round(hwmMB()) : NaN,
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('MALLOC_')) as [string, string][]),
    ...(profile ? { kernelProfile: profile } : {}),
  };
  await Promise.all(sessions.map((s) => s.release()));
  return result;
}

function round(v: number, d = 0): number {
  return Math.round(v * 10 ** d) / 10 ** d;
}

const ENTRY = fileURLToPath(import.meta.url);

/** One measurement in its own child process. */
export function measureInChild(spec: MeasureSpec, env: Record<string, string> = {}, timeoutSeconds = 900): Promise<Measurement> {
  return runChild<Measurement>(ENTRY, spec, { env, timeoutSeconds });
}

/** glibc malloc tunables that keep freed memory for reuse instead of returning (and re-faulting) it. */
export const GLIBC_KEEP = { MALLOC_MMAP_THRESHOLD_: '33554432', MALLOC_TRIM_THRESHOLD_: '100000000000', MALLOC_TOP_PAD_: '1000000000' };

export interface ThroughputOptions {
  cases?: ThroughputCase[];
  /** Include CwC-mod in the speed table. */
  cwc?: boolean;
  warmup?: number;
  reps?: number;
  /** Run the ResNet18 memory matrix (sff/bp × arena on/off × glibc tunables). */
  memory?: boolean;
  /** Profile the SFF and BP steps of the first case (kernel time by op type). */
  profile?: boolean;
  log?: (s: string) => void;
}

export interface ThroughputRow {
  case: ThroughputCase;
  forward: Measurement;
  sff: Measurement;
  bp: Measurement;
  cwc?: Measurement;
  /** SFF img/s ÷ (forward img/s ÷ 3), median steps: target ≥ 0.8. */
  sffVsForwardOver3: number;
  /** SFF img/s ÷ BP img/s, median steps: target ≥ 1 (SFF time per epoch ≤ BP's). */
  sffVsBp: number;
  /** The same ratios from the fastest step of each (a single quiet moment on a shared machine can flatter one side). */
  sffVsForwardOver3Min: number;
  sffVsBpMin: number;
}

export interface ThroughputReport {
  machine: { cpus: number; node: string; ort: string | undefined };
  rows: ThroughputRow[];
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
  const log = opts.log ?? ((s: string) => console.error(s));
  const warmup = opts.warmup ?? 1;
  const reps = opts.reps ?? 4;
  const rows: ThroughputRow[] = [];
  const one = async (c: ThroughputCase, mode: ThroughputMode, memArena = true, env: Record<string, string> = {}, extra: Partial<MeasureSpec> = {}) => {
    const m = await measureInChild({ ...c, mode, memArena, warmup: mode === 'forward' ? warmup + 1 : warmup, reps: mode === 'forward' ? reps * 2 : reps, ...extra }, env);
    log(
      `  ${c.model.replace('builtin:', '')} ${c.imageSize}px b${c.batch} ${mode.padEnd(7)} arena ${memArena ? 'on ' : 'off'}${Object.keys(env).length ? ' +glibc' : ''}  ` +
        `${m.msPerStep.toFixed(0)} ms/step  ${m.imagesPerSecond.toFixed(1)} img/s  peak RSS ${m.peakRssMB} MB (built ${m.rssBuiltMB}, start ${m.rssStartMB})  build ${m.buildSeconds}s`,
    );
    return m;
  };
  for (const c of opts.cases ?? DEFAULT_CASES) {
    const forward = await one(c, 'forward');
    const sff = await one(c, 'sff');
    const bp = await one(c, 'bp');
    const cwc = opts.cwc ? await one(c, 'cwc') : undefined;
    rows.push({
      case: c,
      forward,
      sff,
      bp,
      ...(cwc ? { cwc } : {}),
      sffVsForwardOver3: round(sff.imagesPerSecond / (forward.imagesPerSecond / 3), 3),
      sffVsBp: round(sff.imagesPerSecond / bp.imagesPerSecond, 3),
      sffVsForwardOver3Min: round((3 * forward.msPerStepMin) / sff.msPerStepMin, 3),
      sffVsBpMin: round(bp.msPerStepMin / sff.msPerStepMin, 3),
    });
  }
  const memory: Measurement[] = [];
  if (opts.memory ?? true) {
    const c: ThroughputCase = { model: 'builtin:resnet18', imageSize: 224, batch: 32 };
    const have = rows.find((r) => r.case.model === c.model && r.case.imageSize === c.imageSize && r.case.batch === c.batch);
    for (const mode of ['sff', 'bp'] as const) {
      memory.push(have ? have[mode] : await one(c, mode, true));
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
    machine: { cpus: (await import('node:os')).cpus().length, node: process.version, ort: runtimeVersion() },
    rows,
    memory,
    profiles,
    seconds: round((performance.now() - t0) / 1000, 1),
  };
}

const mb = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(0));
const short = (m: string) => m.replace('builtin:', '').replace(/^.*\//, '').replace(/\.onnx$/, '');

/** Markdown tables of a throughput report. */
export function throughputMarkdown(r: ThroughputReport): string {
  const lines: string[] = [];
  const best = (m: Measurement) => ((m.batch * 1000) / m.msPerStepMin).toFixed(1);
  lines.push('img/s from the median step (fastest step in brackets); ratios from the median steps (fastest-step ratios in brackets).', '');
  lines.push('| model, input, batch | forward img/s | BP train img/s | SFF train img/s | SFF / (forward/3) (target ≥ 0.8) | SFF / BP (target ≥ 1) | peak RSS MB of the steps (process, build incl.) BP / SFF |');
  lines.push('|---|---|---|---|---|---|---|');
  for (const row of r.rows)
    lines.push(
      `| ${short(row.case.model)} ${row.case.imageSize}×${row.case.imageSize} b${row.case.batch} | ${row.forward.imagesPerSecond.toFixed(1)} (${best(row.forward)}) | ${row.bp.imagesPerSecond.toFixed(1)} (${best(row.bp)}) | ` +
        `${row.sff.imagesPerSecond.toFixed(1)} (${best(row.sff)}) | ${row.sffVsForwardOver3.toFixed(2)} (${row.sffVsForwardOver3Min.toFixed(2)}) | ${row.sffVsBp.toFixed(2)} (${row.sffVsBpMin.toFixed(2)}) | ${mb(row.bp.stepPeakRssMB)} (${mb(row.bp.peakRssMB)}) / ${mb(row.sff.stepPeakRssMB)} (${mb(row.sff.peakRssMB)}) |`,
    );
  if (r.rows.some((row) => row.sff.msPerSession.length > 1)) {
    lines.push('', 'SFF time per block session (ms, median):', '');
    for (const row of r.rows) lines.push(`- ${short(row.case.model)}: ${row.sff.msPerSession.join(' / ')} (BP step ${row.bp.msPerStep} ms, forward ${row.forward.msPerStep} ms)`);
  }
  if (r.memory.length) {
    lines.push('', '| ResNet18 224 b32 | CPU arena | glibc keep-memory tunables | sessions | peak RSS MB, steps | peak RSS MB, process | peak while building | RSS after build | ms/step (min) |', '|---|---|---|---|---|---|---|---|---|');
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
        `SFF ÷ BP peak RSS of the steps (target ≤ 0.5): lowest SFF setting vs BP with the arena on ${ratio(low, bpOn)}; same settings for both: ` +
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

if (process.argv[1] === ENTRY && !childMain(measure)) {
  runThroughput({ profile: process.argv.includes('--profile') }).then(
    (r) => console.log(JSON.stringify(r, null, 2) + '\n' + throughputMarkdown(r)),
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
