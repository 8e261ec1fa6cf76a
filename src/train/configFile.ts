/**
 * config.json: written into the run folder before the first step, so a run can be read, compared
 * and repeated without opening the binary checkpoint. It holds every resolved option (the
 * RunConfig), the seed, the versions of this package and its runtimes, and a fingerprint of the
 * prepared data (the decoded pixels and labels of each split, so a changed file, split or size shows).
 * `optionsFromConfigFile` turns it (or a hand-written options file) back into FinetuneOptions.
 */
import { parsePipeline } from './pipeline/executor.js';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { ImageSet, PreparedData } from '../data/index.js';
import { writeFileAtomic } from '../util/fs.js';
import { versions, type Versions } from '../runtime/versions.js';
import { OptionError, type FinetuneOptions, type RunConfig } from './options.js';

export const CONFIG_FILE = 'config.json';

export interface RunConfigFile {
  /** Format of this file. */
  format: 'sff-finetune/run-config@1';
  createdAt: string;
  seed: number;
  /** Every option as resolved for this run (defaults filled in from the model and data). */
  options: RunConfig;
  /** How it ran (not part of what it computes): onnxruntime device, threads and arena, the decode cache, whether it exports. */
  runtime: RuntimeChoices;
  data: { source: string; fingerprint: string; classes: number; train: number; val: number; test?: number };
  versions: Versions;
  /** The first epoch this file's run trains (0 for a new run, the checkpoint's next epoch on resume). */
  startEpoch: number;
}

function hashSet(h: ReturnType<typeof createHash>, set: ImageSet): void {
  h.update(`${set.role}:${set.count}:${set.height}x${set.width}x${set.storedChannels}\n`);
  h.update(new Uint8Array(set.labels.buffer, set.labels.byteOffset, set.labels.byteLength));
  for (let i = 0; i < set.count; i++) h.update(set.image(i));
}

/** sha256 of the classes and of each split's decoded pixels and labels, in order. */
export function dataFingerprint(data: PreparedData): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(data.classes));
  hashSet(h, data.train);
  hashSet(h, data.val);
  if (data.test) hashSet(h, data.test);
  return `sha256:${h.digest('hex')}`;
}

export interface RuntimeChoices {
  device: string;
  threads: number | null;
  /** --pipeline: off, auto or a number of workers. */
  pipeline: 'off' | 'auto' | number;
  memArena: boolean;
  cacheDir: string | null;
  noExport: boolean;
}

export function runtimeChoices(o: FinetuneOptions): RuntimeChoices {
  return { device: o.device ?? 'cpu', threads: o.threads ?? null, pipeline: o.pipeline ?? 'off', memArena: o.memArena ?? false, cacheDir: o.cacheDir ?? null, noExport: o.noExport ?? false };
}

export function writeRunConfig(cfg: RunConfig, runtime: RuntimeChoices, data: PreparedData, startEpoch: number): string {
  const file: RunConfigFile = {
    format: 'sff-finetune/run-config@1',
    createdAt: new Date().toISOString(),
    seed: cfg.seed,
    options: cfg,
    runtime,
    data: {
      source: data.source,
      fingerprint: dataFingerprint(data),
      classes: data.classes.length,
      train: data.train.count,
      val: data.val.count,
      ...(data.test ? { test: data.test.count } : {}),
    },
    versions: versions(),
    startEpoch,
  };
  const path = join(cfg.out, CONFIG_FILE);
  writeFileAtomic(path, Buffer.from(JSON.stringify(file, null, 2) + '\n'));
  return path;
}

/** RunConfig keys that are FinetuneOptions under another name or shape; `classes` comes from the data. */
const RENAMED: Partial<Record<keyof RunConfig, keyof FinetuneOptions | null>> = {
  testData: 'testData',
  maxStepsPerEpoch: 'maxStepsPerEpoch',
  classes: null,
  // A held-out test share goes back as --split train/val/test (below), which also carries valFraction.
  testFraction: null,
};

/**
 * Options from a parsed options file: either a config.json written by a run (its `options`), or
 * a plain object of FinetuneOptions fields. Unknown keys are an error naming the key.
 */
export function optionsFromConfigFile(parsed: unknown, file: string): Partial<FinetuneOptions> {
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new OptionError(`${file}: expected an object of options`);
  const record = parsed as Record<string, unknown>;
  const runConfig = record.format === 'sff-finetune/run-config@1';
  const runtime = runConfig ? (record.runtime as Record<string, unknown> | undefined) ?? {} : {};
  // From a config.json: its options, and its runtime choices that were set (null = the default).
  const source = runConfig ? { ...Object.fromEntries(Object.entries(runtime).filter(([, v]) => v !== null && v !== false)), ...(record.options as Record<string, unknown>) } : record;
  const known = new Set<string>(KNOWN_OPTIONS);
  const o: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(source)) {
    if (k in RENAMED) {
      const to = RENAMED[k as keyof RunConfig];
      if (to) o[to] = v;
      continue;
    }
    if (k === 'valFraction' && typeof source.testFraction === 'number') {
      const val = Number(v);
      const test = source.testFraction;
      o.split = `${1 - val - test}/${val}/${test}`;
      continue;
    }
    if (k === 'imageSize' && Array.isArray(v)) {
      if (v[0] !== v[1]) throw new OptionError(`${file}: imageSize ${JSON.stringify(v)} is not square; only square sizes can be set`);
      o.imageSize = v[0];
      continue;
    }
    if (k === 'pipeline') {
      o.pipeline = parsePipeline(v as string | number);
      continue;
    }
    if (!known.has(k)) throw new OptionError(`${file}: unknown option '${k}' (known: ${[...known].join(', ')})`);
    o[k] = v;
  }
  return o as Partial<FinetuneOptions>;
}

/** FinetuneOptions fields an options file may set. */
export const KNOWN_OPTIONS = [
  'model', 'data', 'method', 'out', 'epochs', 'batchSize', 'lr', 'weightDecay', 'bnMomentum', 'seed', 'threads', 'device',
  'ensemble', 'norm', 'auxKernel', 'headPool', 'blocks', 'freeze', 'normalize', 'augment', 'subset', 'testData', 'imageSize',
  'valFraction', 'lrPatience', 'stopPatience', 'memArena', 'cacheDir', 'maxStepsPerEpoch', 'noExport', 'exportHeads', 'exportScores', 'exportDtype',
  'split', 'headBlock', 'headInit', 'pooledHeads', 'schedule', 'warmup', 'labelSmoothing',
] as const satisfies readonly (keyof FinetuneOptions)[];
