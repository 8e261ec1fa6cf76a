/**
 * The paper's measurements on this machine (the paper's Tables 2–4): BP, CwC-mod and SFF trained on the
 * same data and network, each run in its own process (its peak memory is its own), gathered
 * into `bench/results/<name>.json` and a Markdown table shaped like the paper's tables.
 *
 * Suites:
 *  - cifar:      CIFAR-10 CNN and CNNB, BP vs CwC-mod vs SFF;
 *  - small:      1000 training samples: CIFAR-10 CNNB and Imagenette MobileNetV3-small from scratch, BP vs SFF;
 *  - transfer:   the ImageNet-pretrained MobileNetV3 on Imagenette, BP vs SFF, each at its best
 *                learning rate from a small search (chosen on validation accuracy);
 *  - throughput: train-step images/s and peak memory (see throughput.ts).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../util/fs.js';
import { runPool } from '../util/pool.js';
import type { FinetuneOptions, Method } from '../train/options.js';
import { trainInChild, type WorkerResult } from './train-worker.js';
import { runThroughput, throughputMarkdown, type ThroughputCase, type ThroughputReport } from './throughput.js';

export const SUITES = ['cifar', 'small', 'transfer', 'throughput'] as const;
export type Suite = (typeof SUITES)[number];

export const TRANSFER_NORMALIZE = '0.50196,0.50196,0.50196/0.49804,0.49804,0.49804';

export interface PaperOptions {
  suites: Suite[];
  /** Epochs per training run (early stopping and plateau schedule as the trainer's defaults). */
  epochs: number;
  seeds: number[];
  dataCifar: string;
  dataImagenette: string;
  /** The ImageNet-pretrained MobileNetV3 for the transfer row. */
  transferModel: string;
  /** Learning rates searched in the transfer row. */
  transferLr: { bp: number[]; sff: number[] };
  /** Results name: bench/results/<name>.json and .md. */
  name: string;
  /** Results folder (default bench/results). */
  resultsDir: string;
  /** Run folders (checkpoints, logs): default artifacts/bench/<name>. */
  workDir: string;
  /** At most this many steps per epoch (quick runs). */
  maxSteps?: number;
  /** Only these methods. */
  methods?: Method[];
  /** Reuse finished runs found in the work folder (result.json) instead of training again. */
  resume?: boolean;
  memArena?: boolean;
  threads?: number;
  /** --device for the training runs and the throughput suite (default cpu). */
  device?: string;
  /** Throughput cases instead of the default ones. */
  throughputCases?: ThroughputCase[];
  /** --bn-momentum for every run (PyTorch's convention); default: each graph's own. */
  bnMomentum?: number;
  /**
   * Training runs in flight at once (default 1). With more than one, each run gets
   * ⌊cores / jobs⌋ onnxruntime threads unless `threads` says otherwise, and the longest runs
   * start first; timings then include the other runs' contention for memory bandwidth.
   */
  jobs?: number;
  /** Only list the planned runs. */
  dryRun?: boolean;
  log?: (s: string) => void;
}

/** One training run of the suite. */
export interface PlannedRun {
  id: string;
  suite: Suite;
  /** Table row, e.g. "CIFAR-10, CNNB". */
  row: string;
  method: Method;
  seed: number;
  /** A learning-rate candidate (transfer search); undefined: the trainer's default. */
  lr?: number;
  options: FinetuneOptions;
}

export interface RunSummary {
  /** Best validation epoch's ensemble ("Layers Acc", rule all); BP: its classifier. */
  acc: number;
  /** SFF/CwC-mod: the weighted ensemble at that epoch. */
  weightedAcc?: number;
  /** CwC-mod: the linear probe on the detached last block ("Head Acc"). */
  headAcc?: number;
  /** Per-block validation accuracy at the best epoch. */
  blockAcc: number[];
  bestEpoch: number;
  epochs: number;
  /** Mean training wall time per epoch (s) and per step (ms); mean whole-epoch time (s, with validation). */
  trainSecondsPerEpoch: number;
  msPerStep: number;
  secondsPerEpoch: number;
  stepsPerEpoch: number;
  imagesPerSecond: number;
  /** Whole process, graph building included. */
  peakRssMB: number;
  trainingPeakRssMB: number;
  /** Training alone (high-water mark reset after the first step); NaN where unsupported. */
  steadyPeakRssMB: number;
  params: number;
}

export interface RunRecord {
  run: Omit<PlannedRun, 'options'> & { options: FinetuneOptions };
  ok: boolean;
  error?: string;
  summary?: RunSummary;
  result?: WorkerResult;
}

/** Mean and standard deviation (sample, n−1) over seeds. */
export interface Stat {
  mean: number;
  std: number;
  n: number;
}

export interface MethodCell {
  method: Method;
  lr?: number;
  acc: Stat;
  weightedAcc?: Stat;
  headAcc?: Stat;
  /** Peak RSS of training (steady: after the first step); whole process in `processPeakRssMB`. */
  peakRssMB: Stat;
  processPeakRssMB: Stat;
  trainSecondsPerEpoch: Stat;
  msPerStep: Stat;
  params: number;
  /** Training time per epoch relative to BP's (same row). */
  timeVsBp?: number;
  /** Learning-rate search: mean accuracy for each candidate. */
  lrSearch?: { lr: number; acc: number }[];
  epochs: number;
  stepsPerEpoch: number;
}

export interface PaperRow {
  row: string;
  suite: Suite;
  cells: Partial<Record<Method, MethodCell>>;
  paper?: PaperReference;
}

export interface PaperReport {
  name: string;
  date: string;
  machine: { cpus: number; cpu: string | undefined; node: string; memoryGB: number };
  options: Omit<PaperOptions, 'log'>;
  rows: PaperRow[];
  runs: RunRecord[];
  throughput?: ThroughputReport;
  notes: string[];
}

interface PaperReference {
  bp: string;
  cwc?: string;
  sff: string;
  memory?: string;
  time?: string;
}

/** The paper's Tables 2–4 for the rows measured here. */
export const PAPER: Record<string, PaperReference> = {
  'CIFAR-10, CNN': { bp: '79.10±0.49', cwc: '69.06 / 69.60', sff: '70.34±0.05', memory: '544.91 / 537.34', time: '2.6' },
  'CIFAR-10, CNNB': { bp: '78.49±0.22', cwc: '72.88 / 76.17', sff: '81.38±0.35', memory: '544.93 / 528.3', time: '2.2' },
  'CIFAR-10 (1000 samples), CNNB': { bp: '49.90±0.61', sff: '50.19±1.04' },
  'Imagenette (1000 samples), MobileNetV3-small': { bp: '49.93±2.04', sff: '58.95±1.62' },
  'Imagenette-3000, MobileNetV3 (ImageNet-pretrained)': { bp: '85.14±1.50', sff: '79.80±0.71' },
};

export function defaultPaperOptions(over: Partial<PaperOptions> = {}): PaperOptions {
  const name = over.name ?? 'paper';
  return {
    suites: ['cifar', 'small', 'transfer', 'throughput'],
    epochs: 20,
    seeds: [0],
    dataCifar: resolve('../shared/data/cifar10-train'),
    dataImagenette: resolve('../shared/data/imagenette-train-3000'),
    transferModel: resolve('../shared/models/mobilenet_v3_large_minimalistic_224_float.onnx'),
    transferLr: { bp: [1e-4, 3e-5], sff: [3e-5, 3e-4] },
    resultsDir: resolve('bench/results'),
    workDir: resolve('artifacts/bench', name),
    ...over,
    name,
  };
}

/** The training runs of the chosen suites. */
export function planPaperRuns(o: PaperOptions): PlannedRun[] {
  const runs: PlannedRun[] = [];
  const want = (m: Method) => !o.methods || o.methods.includes(m);
  const add = (suite: Suite, row: string, slug: string, method: Method, base: Omit<FinetuneOptions, 'out'>, lr?: number) => {
    if (!want(method)) return;
    for (const seed of o.seeds) {
      const id = `${slug}-${method}${lr !== undefined ? `-lr${lr}` : ''}-s${seed}`;
      runs.push({
        id,
        suite,
        row,
        method,
        seed,
        ...(lr !== undefined ? { lr } : {}),
        options: {
          ...base,
          method,
          seed,
          epochs: o.epochs,
          out: join(o.workDir, id),
          // The bench's own folder (train.log beside the run): a run without bench-result.json is retrained.
          overwrite: true,
          noExport: true,
          ...(lr !== undefined ? { lr } : {}),
          ...(o.maxSteps ? { maxStepsPerEpoch: o.maxSteps } : {}),
          ...(o.memArena !== undefined ? { memArena: o.memArena } : {}),
          ...(o.threads ? { threads: o.threads } : {}),
          ...(o.device ? { device: o.device } : {}),
          ...(o.bnMomentum !== undefined ? { bnMomentum: o.bnMomentum } : {}),
        },
      });
    }
  };
  if (o.suites.includes('cifar'))
    for (const [model, label] of [['cnn', 'CNN'], ['cnnb', 'CNNB']] as const)
      for (const m of ['bp', 'cwc', 'sff'] as const) add('cifar', `CIFAR-10, ${label}`, `cifar10-${model}`, m, { model: `builtin:${model}`, data: o.dataCifar });
  if (o.suites.includes('small')) {
    for (const m of ['bp', 'sff'] as const) add('small', 'CIFAR-10 (1000 samples), CNNB', 'cifar10-1000-cnnb', m, { model: 'builtin:cnnb', data: o.dataCifar, subset: 1000 });
    for (const m of ['bp', 'sff'] as const)
      add('small', 'Imagenette (1000 samples), MobileNetV3-small', 'imagenette-1000-mnv3s', m, { model: 'builtin:mobilenetv3-small', data: o.dataImagenette, subset: 1000 });
  }
  if (o.suites.includes('transfer'))
    for (const m of ['bp', 'sff'] as const)
      for (const lr of o.transferLr[m])
        add('transfer', 'Imagenette-3000, MobileNetV3 (ImageNet-pretrained)', 'imagenette-mnv3-pretrained', m, { model: o.transferModel, data: o.dataImagenette, normalize: TRANSFER_NORMALIZE }, lr);
  return runs;
}

function mean(a: number[]): number {
  return a.reduce((s, x) => s + x, 0) / Math.max(a.length, 1);
}

export function stat(a: number[]): Stat {
  const m = mean(a);
  const std = a.length > 1 ? Math.sqrt(a.reduce((s, x) => s + (x - m) ** 2, 0) / (a.length - 1)) : 0;
  return { mean: m, std, n: a.length };
}

export function summariseRun(r: WorkerResult): RunSummary {
  const h = r.history;
  const best = r.best ?? h.at(-1)!;
  const trainSecs = h.map((m) => m.trainSeconds ?? m.seconds);
  const steps = h[0]?.steps ?? 0;
  return {
    acc: best.val.layers['all'] ?? best.ensemble.acc,
    ...(best.val.layers['weighted'] !== undefined ? { weightedAcc: best.val.layers['weighted'] } : {}),
    ...(best.val.layers['head'] !== undefined ? { headAcc: best.val.layers['head'] } : {}),
    blockAcc: best.val.acc,
    bestEpoch: best.epoch,
    epochs: h.length,
    trainSecondsPerEpoch: mean(trainSecs),
    msPerStep: mean(h.map((m) => (m.stepSeconds ?? 0) * 1000)),
    secondsPerEpoch: mean(h.map((m) => m.seconds)),
    stepsPerEpoch: steps,
    imagesPerSecond: mean(h.map((m) => m.imagesPerSecond)),
    peakRssMB: r.peakRssMB,
    trainingPeakRssMB: r.trainingPeakRssMB,
    steadyPeakRssMB: r.steadyPeakRssMB ?? NaN,
    params: r.trainableParams,
  };
}

/** Groups finished runs into table rows; the transfer row keeps each method's best learning rate. */
export function buildRows(records: RunRecord[]): PaperRow[] {
  const rows: PaperRow[] = [];
  const byRow = new Map<string, RunRecord[]>();
  for (const r of records) if (r.ok && r.summary) byRow.set(r.run.row, [...(byRow.get(r.run.row) ?? []), r]);
  for (const [row, recs] of byRow) {
    const cells: Partial<Record<Method, MethodCell>> = {};
    for (const method of ['bp', 'cwc', 'sff'] as const) {
      const mine = recs.filter((r) => r.run.method === method);
      if (!mine.length) continue;
      const lrs = [...new Set(mine.map((r) => r.run.lr))];
      const search = lrs.map((lr) => ({ lr, acc: mean(mine.filter((r) => r.run.lr === lr).map((r) => r.summary!.acc)) }));
      const chosen = search.reduce((a, b) => (b.acc > a.acc ? b : a));
      const sel = mine.filter((r) => r.run.lr === chosen.lr).map((r) => r.summary!);
      const opt = <K extends keyof RunSummary>(k: K) => (sel.every((s) => s[k] !== undefined) ? stat(sel.map((s) => s[k] as number)) : undefined);
      const weightedAcc = method === 'bp' ? undefined : opt('weightedAcc');
      const headAcc = opt('headAcc');
      cells[method] = {
        method,
        ...(chosen.lr !== undefined ? { lr: chosen.lr } : {}),
        acc: stat(sel.map((s) => s.acc)),
        ...(weightedAcc ? { weightedAcc } : {}),
        ...(headAcc ? { headAcc } : {}),
        peakRssMB: stat(sel.map((s) => (Number.isFinite(s.steadyPeakRssMB) ? s.steadyPeakRssMB : s.peakRssMB))),
        processPeakRssMB: stat(sel.map((s) => s.peakRssMB)),
        trainSecondsPerEpoch: stat(sel.map((s) => s.trainSecondsPerEpoch)),
        msPerStep: stat(sel.map((s) => s.msPerStep)),
        params: sel[0]!.params,
        ...(search.length > 1 ? { lrSearch: search.map((s) => ({ lr: s.lr!, acc: s.acc })) } : {}),
        epochs: Math.max(...sel.map((s) => s.epochs)),
        stepsPerEpoch: sel[0]!.stepsPerEpoch,
      };
    }
    const bp = cells.bp;
    if (bp) for (const c of Object.values(cells)) if (c && c.method !== 'bp') c.timeVsBp = c.trainSecondsPerEpoch.mean / bp.trainSecondsPerEpoch.mean;
    const first = recs[0]!;
    rows.push({ row, suite: first.run.suite, cells, ...(PAPER[row] ? { paper: PAPER[row] } : {}) });
  }
  return rows;
}

const pc = (s: Stat | undefined) => (s ? `${(s.mean * 100).toFixed(2)}${s.n > 1 ? `±${(s.std * 100).toFixed(2)}` : ''}` : '–');
const mbs = (s: Stat | undefined) => (s ? s.mean.toFixed(0) : '–');
const int = (n: number | undefined) => (n === undefined ? '–' : n.toLocaleString('en-US'));

/** The Markdown report: the §6-shaped table, per-run details, throughput tables. */
export function paperMarkdown(r: PaperReport): string {
  const out: string[] = [];
  out.push(`# ${r.name}: SFF vs BP vs CwC-mod on this machine`, '');
  out.push(`${r.date}, ${r.machine.cpus} × ${r.machine.cpu ?? 'CPU'}, ${r.machine.memoryGB} GB, node ${r.machine.node}. ` + (!r.runs.length ? '' :
    `Epochs ${r.options.epochs}${r.options.maxSteps ? ` (at most ${r.options.maxSteps} steps each)` : ''}, seeds ${r.options.seeds.join(', ')}${r.options.bnMomentum !== undefined ? `, BatchNorm momentum ${r.options.bnMomentum} (PyTorch's convention) in every run` : ''}. ` +
    'Accuracy: validation split (20% of the training data, by seed) at the best epoch; mean±std over seeds. ' +
    'Memory: peak resident set size of the training process during training (OS high-water mark reset after the first step, so building the graphs is left out; ' +
    'the whole-process peak, building included, is in brackets; the data set in memory counts in both; the paper reports peak GPU memory). ' +
    'Time: mean training wall time per epoch relative to BP (same row).'), '');
  if (r.rows.length) {
    out.push('| data, model | BP acc | CwC-mod layers / head | SFF acc (all / weighted) | peak RSS MB BP / CwC / SFF | SFF time | CwC time | s/epoch BP / CwC / SFF | params BP / CwC / SFF | paper |');
    out.push('|---|---|---|---|---|---|---|---|---|---|');
    for (const row of r.rows) {
      const { bp, cwc, sff } = row.cells;
      const lr = (c: MethodCell | undefined) => (c?.lr !== undefined ? ` (lr ${c.lr})` : '');
      out.push(
        `| ${row.row} | ${pc(bp?.acc)}${lr(bp)} | ${cwc ? `${pc(cwc.acc)} / ${pc(cwc.headAcc)}` : '–'} | ${sff ? `${pc(sff.acc)} / ${pc(sff.weightedAcc)}${lr(sff)}` : '–'} | ` +
          `${[bp, cwc, sff].map((c) => (c ? `${mbs(c.peakRssMB)} (${mbs(c.processPeakRssMB)})` : '–')).join(' / ')} | ${sff?.timeVsBp?.toFixed(2) ?? '–'} | ${cwc?.timeVsBp?.toFixed(2) ?? '–'} | ` +
          `${[bp, cwc, sff].map((c) => (c ? c.trainSecondsPerEpoch.mean.toFixed(1) : '–')).join(' / ')} | ${int(bp?.params)} / ${int(cwc?.params)} / ${int(sff?.params)} | ` +
          `${row.paper ? `BP ${row.paper.bp}; ${row.paper.cwc ? `CwC ${row.paper.cwc}; ` : ''}SFF ${row.paper.sff}${row.paper.memory ? `; MB ${row.paper.memory}; time ${row.paper.time}` : ''}` : '–'} |`,
      );
    }
    out.push('');
    const searched = r.rows.flatMap((row) => Object.values(row.cells).filter((c) => c?.lrSearch).map((c) => `${row.row} ${c!.method.toUpperCase()}: ${c!.lrSearch!.map((s) => `lr ${s.lr} → ${(s.acc * 100).toFixed(2)}%`).join(', ')}`));
    if (searched.length) out.push('Learning-rate search (validation accuracy; the best is reported above, so these rows are optimistic by the search):', '', ...searched.map((s) => `- ${s}`), '');
    out.push('Runs:', '', '| run | best epoch / epochs | steps/epoch | val acc | blocks | train s/epoch | ms/step | img/s | peak RSS MB training / process |', '|---|---|---|---|---|---|---|---|---|');
    for (const rec of r.runs) {
      const s = rec.summary;
      if (!s) {
        out.push(`| ${rec.run.id} | failed: ${(rec.error ?? '').split('\n')[0]!.slice(0, 120)} | | | | | | | |`);
        continue;
      }
      out.push(
        `| ${rec.run.id} | ${s.bestEpoch} / ${s.epochs} | ${s.stepsPerEpoch} | ${(s.acc * 100).toFixed(2)} | ${s.blockAcc.map((a) => (a * 100).toFixed(1)).join(' ')} | ${s.trainSecondsPerEpoch.toFixed(1)} | ${s.msPerStep.toFixed(0)} | ${s.imagesPerSecond.toFixed(0)} | ${s.steadyPeakRssMB.toFixed(0)} / ${s.peakRssMB.toFixed(0)} |`,
      );
    }
    out.push('');
  }
  if (r.throughput) out.push('## Throughput and memory', '', throughputMarkdown(r.throughput));
  if (r.notes.length) out.push('## Notes', '', ...r.notes.map((n) => `- ${n}`), '');
  return out.join('\n');
}

/** Expected relative cost of a run, so that a pool starts the long ones first. */
function expectedCost(run: PlannedRun): number {
  const perStep = { sff: 3, cwc: 1.7, bp: 1 }[run.method];
  const size = run.row.includes('Imagenette') ? 20 : run.row.includes(', CNN') && !run.row.includes('CNNB') ? 1.5 : 1;
  return perStep * size * (run.options.subset ? run.options.subset / 50_000 : 1);
}

/** Planned-run indices, most expensive first (stable for equal costs). */
function longestFirst(planned: PlannedRun[]): number[] {
  return planned.map((_, i) => i).sort((a, b) => expectedCost(planned[b]!) - expectedCost(planned[a]!) || a - b);
}

/** Runs the suites, writing the results after every run (a killed bench keeps what it finished). */
export async function runPaper(o: PaperOptions): Promise<PaperReport> {
  const log = o.log ?? ((s: string) => console.error(s));
  const os = await import('node:os');
  const jobs = Math.max(1, Math.floor(o.jobs ?? 1));
  // Several runs at once share the cores: each gets its share unless --threads says otherwise.
  const threads = o.threads ?? (jobs > 1 ? Math.max(1, Math.floor(os.cpus().length / jobs)) : undefined);
  const planned = planPaperRuns({ ...o, ...(threads ? { threads } : {}) });
  const report: PaperReport = {
    name: o.name,
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version, memoryGB: Math.round(os.totalmem() / 2 ** 30) },
    options: (({ log: _l, ...rest }) => rest)(o),
    rows: [],
    runs: [],
    notes: [
      'onnxruntime-node exposes no allocator statistics, so the onnxruntime arena peak is not reported; peak RSS includes it.',
      'Runs are sequential child processes on a shared 2-core machine: timings carry the noise of whatever else ran.',
    ],
  };
  const jsonPath = join(o.resultsDir, `${o.name}.json`);
  const mdPath = join(o.resultsDir, `${o.name}.md`);
  const save = () => {
    if (o.dryRun) return;
    mkdirSync(o.resultsDir, { recursive: true });
    report.rows = buildRows(report.runs);
    writeFileAtomic(jsonPath, JSON.stringify(report, null, 2) + '\n');
    writeFileAtomic(mdPath, paperMarkdown(report));
  };
  if (jobs > 1) report.notes[1] = `Runs are child processes, ${jobs} at a time with ${threads} onnxruntime thread(s) each, on a shared ${os.cpus().length}-core machine: timings include their contention and the noise of whatever else ran.`;
  log(`bench ${o.name}: ${planned.length} training runs${o.suites.includes('throughput') ? ' + throughput' : ''}${jobs > 1 ? `, ${jobs} at a time` : ''} → ${jsonPath}`);
  const records: (RunRecord | undefined)[] = planned.map(() => undefined);
  const runOne = async (i: number): Promise<void> => {
    const run = planned[i]!;
    const tag = `[${i + 1}/${planned.length}] ${run.id}`;
    if (o.dryRun) {
      log(`${tag}  ${run.options.model} on ${run.options.data}${run.options.subset ? ` subset ${run.options.subset}` : ''}, ${run.method}${run.lr ? ` lr ${run.lr}` : ''}, seed ${run.seed}`);
      return;
    }
    const resultFile = join(run.options.out!, 'bench-result.json');
    const record: RunRecord = { run, ok: false };
    const t0 = performance.now();
    try {
      let result: WorkerResult;
      if (o.resume && existsSync(resultFile)) {
        result = JSON.parse(readFileSync(resultFile, 'utf8')) as WorkerResult;
        log(`${tag}: reused ${resultFile}`);
      } else {
        mkdirSync(run.options.out!, { recursive: true });
        log(`${tag}: training (log ${join(run.options.out!, 'train.log')})`);
        result = await trainInChild(run.options, { logFile: join(run.options.out!, 'train.log') });
        writeFileAtomic(resultFile, JSON.stringify(result) + '\n');
      }
      record.ok = true;
      record.result = result;
      record.summary = summariseRun(result);
      const s = record.summary;
      log(
        `${tag}: acc ${(s.acc * 100).toFixed(2)}%${s.headAcc !== undefined ? ` head ${(s.headAcc * 100).toFixed(2)}%` : ''} (best epoch ${s.bestEpoch}/${s.epochs}), ` +
          `${s.trainSecondsPerEpoch.toFixed(1)} s/epoch training, ${s.msPerStep.toFixed(0)} ms/step, peak RSS ${s.steadyPeakRssMB.toFixed(0)} MB training / ${s.peakRssMB.toFixed(0)} MB process, ${int(s.params)} params  (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
      );
    } catch (e) {
      record.error = e instanceof Error ? e.message : String(e);
      log(`${tag}: FAILED ${record.error}`);
    }
    records[i] = record;
    // The report keeps the planned order whatever order the runs finish in.
    report.runs = records.filter((r): r is RunRecord => r !== undefined);
    save();
  };
  const order = longestFirst(planned);
  await runPool(order.length, jobs, (k) => runOne(order[k]!));
  if (o.suites.includes('throughput') && !o.dryRun) {
    log('throughput (per case: every variant in one process, steps interleaved; memory: each run in its own process):');
    const gpu = o.device !== undefined && o.device !== 'cpu';
    // On a GPU the CPU-arena memory matrix and the CPU kernel profile measure nothing of interest.
    report.throughput = await runThroughput({
      log,
      profile: !gpu,
      ...(gpu ? { memory: false, device: o.device } : {}),
      ...(o.throughputCases ? { cases: o.throughputCases } : {}),
      ...(o.maxSteps ? { minRounds: 3, maxRounds: 3 } : {}),
      ...(o.threads ? { threads: o.threads } : {}),
    });
    save();
  }
  if (!o.dryRun) log(`results: ${jsonPath}, ${mdPath}`);
  return report;
}
