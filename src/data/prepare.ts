/**
 * prepareData: detect the format, list/read the source, split (stratified, seeded),
 * decode + resize once (cached on disk), and hand back uint8 image sets.
 */
import { constants as bufferConstants } from 'node:buffer';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  awaitPendingWrite, cacheFile, cacheKey, defaultCacheDir, readCache, removeStaleTemps, writeCacheInBackground, type CacheHeader,
} from './cache.js';
import { DataError } from './errors.js';
import { checkMemory } from '../util/limits.js';
import { isCifar, loadCifar } from './formats/cifar.js';
import { isIdx, loadIdx } from './formats/idx.js';
import { listClassTree, loadImageFolder, splitLayout } from './formats/imageFolder.js';
import { U8ImageSet, type ImageSet, type SplitRole } from './imageSet.js';
import { decodeImageFile, parseNormalize, resizeRaw, type Triple } from './preprocess.js';
import { runPool } from '../util/pool.js';
import type { LoadedSource, SourcePart } from './source.js';
import { stratifiedSplit, stratifiedSubset } from './split.js';
import { loadShapes } from './synthetic.js';

export interface DataOptions {
  /** Folder, CIFAR dir or file, IDX dir or file, or "builtin:shapes". */
  path: string;
  /** Model input [H, W]. */
  imageSize: [number, number];
  /** Model input channels (1 or 3). */
  channels: number;
  /** 'imagenet' | 'none' | 'r,g,b/r,g,b'; default 'imagenet'. */
  normalize?: string;
  seed?: number;
  valFraction?: number;
  /**
   * Share of the data held out as the test split (stratified, seeded, disjoint from train and
   * val): for data sets without their own test part. Not allowed together with `testPath`.
   */
  testFraction?: number;
  /** Use N training samples (stratified, seeded), taken after the train/val split. */
  subset?: number;
  testPath?: string;
  cifarLabels?: 'fine' | 'coarse';
  /** Cache directory; false-y → $XDG_CACHE_HOME/sff-finetune or ~/.cache/sff-finetune. */
  cacheDir?: string;
  noCache?: boolean;
  expectClasses?: string[];
  /** Decode progress (images decoded or resized so far, of total). */
  onProgress?: (done: number, total: number) => void;
  /** Internal/testing: keep only the first N files (sorted) of each class folder. */
  limitPerClass?: number;
  /** Decodes kept in flight on libuv's pool (default 8). */
  decodeConcurrency?: number;
}

export interface PreparedData {
  classes: string[];
  train: ImageSet;
  val: ImageSet;
  test?: ImageSet;
  preprocess: { size: [number, number]; mean: Triple; std: Triple };
  skipped: { path: string; reason: string }[];
  /** Problems that do not stop a run but may spoil it (empty split, tiny class, duplicates dropped). */
  warnings: string[];
  source: string;
  /** True when every decoded part was read back from the on-disk cache (false if nothing needed decoding). */
  cacheHit: boolean;
  /** Cache files read or being written. */
  cacheFiles: string[];
  /**
   * Resolves when newly decoded images are on disk in the cache (immediately when nothing
   * was written). The write runs in the background; Node waits for it before exiting.
   */
  cacheWritten: Promise<void>;
}

export const BUILTIN_SHAPES = 'builtin:shapes';

/** The data defaults, stated once: training, evaluation and the benchmarks read them from here. */
export const DATA_DEFAULTS = { normalize: 'imagenet', valFraction: 0.2 } as const;

// ---------------------------------------------------------------------------------------
// Format detection

export function loadSource(p: string, opts: Pick<DataOptions, 'seed' | 'cifarLabels' | 'limitPerClass'> = {}): LoadedSource {
  if (p === BUILTIN_SHAPES) return loadShapes(opts.seed ?? 0);
  if (p.startsWith('builtin:')) throw new DataError(`unknown built-in dataset "${p}"; the built-in dataset is "${BUILTIN_SHAPES}".`);
  const abs = path.resolve(p);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new DataError(`${abs}: no such file or directory. Pass --data an image folder, a CIFAR binary dir/file, an IDX dir/file, or ${BUILTIN_SHAPES}.`);
  }
  if (st.isFile()) {
    if (isIdx(abs)) return loadIdx(abs);
    if (isCifar(abs)) return loadCifar(abs, opts.cifarLabels ?? 'fine');
    throw new DataError(
      `${abs}: unrecognised data file. Supported files: CIFAR binary (*.bin) and IDX (*-images-idx3-ubyte[.gz]); ` +
      `for images, point at the folder that holds one sub-folder per class.`,
    );
  }
  if (isCifar(abs)) return loadCifar(abs, opts.cifarLabels ?? 'fine');
  if (isIdx(abs)) return loadIdx(abs);
  return loadImageFolder(abs, opts.limitPerClass !== undefined ? { limitPerClass: opts.limitPerClass } : {});
}

/** The test part from --test-path: its own test split if it has one, else all of it. */
function loadTestSource(p: string, classes: string[], opts: DataOptions): { part: SourcePart; location: string } {
  if (p === BUILTIN_SHAPES) {
    const s = loadShapes(opts.seed ?? 0);
    checkSameClasses(p, classes, s.classes);
    return { part: s.test!, location: p };
  }
  const abs = path.resolve(p);
  if (fs.existsSync(abs) && fs.statSync(abs).isDirectory() && !isCifar(abs) && !isIdx(abs)) {
    const layout = splitLayout(abs);
    const dir = layout ? (layout.test ?? layout.train) : abs;
    const lim = opts.limitPerClass !== undefined ? { limitPerClass: opts.limitPerClass } : {};
    return { part: listClassTree(dir, { classes, ...lim }).part, location: dir };
  }
  const s = loadSource(abs, opts);
  checkSameClasses(abs, classes, s.classes);
  return { part: s.test ?? s.train, location: abs };
}

function checkSameClasses(where: string, expected: string[], got: string[]): void {
  if (expected.length !== got.length || expected.some((c, i) => c !== got[i])) {
    throw new DataError(
      `${where}: test data classes [${got.join(', ')}] differ from the training classes [${expected.join(', ')}]. ` +
      `Use a test set with the same classes.`,
    );
  }
}

function checkLabels(part: SourcePart, numClasses: number): void {
  const l = part.labels;
  for (let i = 0; i < l.length; i++) {
    if (l[i]! < 0 || l[i]! >= numClasses) {
      const where = part.kind === 'files' ? part.files[i]! : part.origin;
      throw new DataError(`${where}: sample ${i} has label ${l[i]}, outside 0..${numClasses - 1}. The data is corrupt or does not match the class list.`);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Decoding / resizing with the cache

interface Materialised {
  store: Uint8Array;
  channels: number;
  /** Store row of each source sample, −1 when skipped or not decoded. */
  rowOf: Int32Array;
  skipped: { path: string; reason: string }[];
  /** 'hit' | 'miss' (decoded now) | 'none' (no decoding needed). */
  cache: 'hit' | 'miss' | 'none';
  cacheFile?: string;
  written?: Promise<void>;
}

interface Ctx {
  H: number;
  W: number;
  cacheDir: string | null;
  concurrency: number;
  progress: { done: number; total: number; cb?: (done: number, total: number) => void };
}

function checkAlloc(bytes: number, what: string): void {
  if (bytes > bufferConstants.MAX_LENGTH) {
    throw new DataError(
      `${what}: ${(bytes / 2 ** 30).toFixed(1)} GiB of decoded images exceeds the ${(bufferConstants.MAX_LENGTH / 2 ** 30).toFixed(0)} GiB ` +
      `buffer limit. Use a smaller --subset or image size.`,
    );
  }
  checkMemory(bytes, `${what}: the decoded images`, 'Use a smaller --subset or image size.');
}

function fileStats(files: string[], root: string): [string, number, number][] {
  return files.map((f) => {
    try {
      const st = fs.statSync(f);
      return [path.relative(root, f), st.size, st.mtimeMs];
    } catch {
      return [path.relative(root, f), -1, -1];
    }
  });
}

async function materialise(part: SourcePart, needed: Int32Array, ctx: Ctx): Promise<Materialised> {
  const { H, W } = ctx;
  const N = part.labels.length;
  const rowOf = new Int32Array(N).fill(-1);
  if (part.kind === 'generated') {
    const bytes = H * W * part.channels;
    checkAlloc(needed.length * bytes, part.origin);
    const store = new Uint8Array(needed.length * bytes);
    for (let r = 0; r < needed.length; r++) {
      part.render(needed[r]!, H, W, store.subarray(r * bytes, (r + 1) * bytes));
      rowOf[needed[r]!] = r;
    }
    return { store, channels: part.channels, rowOf, skipped: [], cache: 'none' };
  }
  if (part.kind === 'raw' && part.height === H && part.width === W) {
    for (let i = 0; i < N; i++) rowOf[i] = i;
    return { store: part.store, channels: part.channels, rowOf, skipped: [], cache: 'none' };
  }
  const channels = part.kind === 'raw' ? part.channels : 3;
  const bytes = H * W * channels;
  const count = needed.length;
  checkAlloc(count * bytes, part.origin);

  // Cache key: what is decoded (files with size + mtime, which samples) and how.
  let file: string | undefined;
  let key = '';
  if (ctx.cacheDir && !(part.kind === 'raw' && part.files.length === 0)) {
    const root = part.kind === 'files' ? part.origin : path.dirname(part.files[0]!);
    const desc = part.kind === 'files'
      ? { kind: 'files', root, entries: fileStats(Array.from(needed, (i) => part.files[i]!), root), H, W }
      : { kind: 'raw', root, entries: fileStats(part.files, root), needed: count === N ? 'all' : Array.from(needed), H, W, channels };
    key = cacheKey(desc);
    file = cacheFile(ctx.cacheDir, key);
    await awaitPendingWrite(file);
    const hit = readCache(file, { key, count, height: H, width: W, channels });
    if (hit) {
      for (let r = 0; r < count; r++) rowOf[needed[r]!] = r;
      const skipped = hit.header.skipped.map((s) => {
        rowOf[needed[s.index]!] = -1;
        return { path: s.path, reason: s.reason };
      });
      ctx.progress.done += count;
      ctx.progress.cb?.(ctx.progress.done, ctx.progress.total);
      return { store: hit.store, channels, rowOf, skipped, cache: 'hit', cacheFile: file };
    }
  }

  const store = new Uint8Array(count * bytes);
  const skippedAt: CacheHeader['skipped'] = [];
  const srcBytes = part.kind === 'raw' ? part.height * part.width * part.channels : 0;
  const every = Math.max(1, Math.floor(count / 200));
  // sharp does its work on libuv's thread pool, so keeping several decodes in flight from the
  // main thread uses every core. Measured on the 2-core target (CIFAR JPEGs, 32×32): in-flight
  // 1 → 2,300 img/s, 4 → 3,600, 8 → 4,200; two worker_threads each running sharp reached
  // 2,900–4,050 img/s, and at 224×224 in-process 4 in flight gave 2,550 img/s vs 1,440–1,620
  // for two workers — so decoding stays in-process.
  await runPool(count, ctx.concurrency, async (r) => {
    const i = needed[r]!;
    try {
      let px: Uint8Array;
      if (part.kind === 'files') {
        px = await decodeImageFile(part.files[i]!, H, W);
      } else {
        px = await resizeRaw(part.store.subarray(i * srcBytes, (i + 1) * srcBytes), part.height, part.width, part.channels, H, W);
      }
      store.set(px, r * bytes);
      rowOf[i] = r;
    } catch (e) {
      if (part.kind !== 'files') throw e;
      const reason = ((e as Error).message || String(e)).split('\n')[0]!;
      skippedAt.push({ index: r, path: part.files[i]!, reason });
    }
    const p = ctx.progress;
    p.done++;
    if (p.cb && (p.done % every === 0 || p.done === p.total)) p.cb(p.done, p.total);
  });
  skippedAt.sort((a, b) => a.index - b.index);
  const out: Materialised = {
    store, channels, rowOf, cache: 'miss',
    skipped: skippedAt.map((s) => ({ path: s.path, reason: s.reason })),
  };
  if (file) {
    // Written in the background so training can start now; see PreparedData.cacheWritten.
    const target = file;
    out.cacheFile = target;
    out.written = writeCacheInBackground(target, { key, count, height: H, width: W, channels, skipped: skippedAt }, store)
      .then((err) => {
        if (err) console.warn(`sff-finetune: could not write the image cache ${target}: ${err}`);
      });
  }
  return out;
}

function makeSet(role: SplitRole, m: Materialised, labels: Int32Array, idx: ArrayLike<number>, H: number, W: number, C: number): U8ImageSet {
  const rows: number[] = [];
  const labs: number[] = [];
  for (let k = 0; k < idx.length; k++) {
    const i = idx[k]!;
    const r = m.rowOf[i]!;
    if (r < 0) continue;
    rows.push(r);
    labs.push(labels[i]!);
  }
  return new U8ImageSet(role, m.store, m.channels, H, W, C, Int32Array.from(rows), Int32Array.from(labs));
}

/**
 * A class whose every image failed to decode would train as an empty class (and score 100% on an
 * empty validation share): an error naming the class and why its images were skipped.
 */
function checkEveryClassReadable(part: SourcePart, m: Materialised, classes: string[]): void {
  if (part.kind !== 'files' || m.skipped.length === 0) return;
  const labelOf = new Map(part.files.map((f, i) => [f, part.labels[i]!]));
  const skipped = new Array<number>(classes.length).fill(0);
  const readable = new Array<number>(classes.length).fill(0);
  for (const s of m.skipped) skipped[labelOf.get(s.path)!]!++;
  for (let i = 0; i < part.labels.length; i++) if (m.rowOf[i]! >= 0) readable[part.labels[i]!]!++;
  const dead = classes.map((c, k) => ({ c, k })).filter(({ k }) => skipped[k]! > 0 && readable[k] === 0);
  if (!dead.length) return;
  const first = dead[0]!;
  const example = m.skipped.find((s) => labelOf.get(s.path) === first.k)!;
  throw new DataError(
    `${dead.map(({ c }) => `class "${c}"`).join(', ')}: none of ${dead.length > 1 ? 'their' : `its ${skipped[first.k]}`} images could be read ` +
    `(e.g. ${example.path}: ${example.reason}). Replace the damaged files or remove the class folder.`,
  );
}

/** Fewer images than this in a class of the training split draws a warning. */
export const FEW_IMAGES = 5;

function splitWarnings(classes: string[], sets: { train: ImageSet; val: ImageSet; test?: ImageSet }): string[] {
  const out: string[] = [];
  if (sets.train.count === 0) out.push('the training split is empty');
  if (sets.val.count === 0)
    out.push('the validation split is empty: best-epoch selection, learning-rate plateaus and early stopping have nothing to go on (use more data or a larger --val-fraction)');
  if (sets.test && sets.test.count === 0) out.push('the test split is empty');
  const counts = new Array<number>(classes.length).fill(0);
  for (let i = 0; i < sets.train.count; i++) counts[sets.train.labels[i]!]!++;
  const few = classes.map((c, k) => ({ c, n: counts[k]! })).filter((x) => x.n < FEW_IMAGES);
  if (few.length)
    out.push(`${few.length === 1 ? 'a class has' : `${few.length} classes have`} fewer than ${FEW_IMAGES} training images: ${few.slice(0, 5).map((x) => `"${x.c}" (${x.n})`).join(', ')}${few.length > 5 ? ', …' : ''}; their accuracy will mean little`);
  return out;
}

// ---------------------------------------------------------------------------------------

export async function prepareData(opts: DataOptions): Promise<PreparedData> {
  const [H, W] = opts.imageSize ?? [];
  if (!Number.isInteger(H) || !Number.isInteger(W) || H! <= 0 || W! <= 0) {
    throw new DataError(`imageSize must be two positive integers [H, W], got ${JSON.stringify(opts.imageSize)}`);
  }
  const h = H!, w = W!;
  const C = opts.channels;
  if (C !== 1 && C !== 3) throw new DataError(`channels must be 1 or 3 (the model's input channels), got ${C}`);
  const norm = parseNormalize(opts.normalize ?? DATA_DEFAULTS.normalize);
  const seed = opts.seed ?? 0;
  const valFraction = opts.valFraction ?? DATA_DEFAULTS.valFraction;
  const testFraction = opts.testFraction ?? 0;
  if (testFraction > 0 && opts.testPath)
    throw new DataError(`both a held-out test fraction (${testFraction}) and a test set (${opts.testPath}) were given: use one of --split with a test share, or --test DIR`);
  if (opts.subset !== undefined && (!Number.isInteger(opts.subset) || opts.subset <= 0)) {
    throw new DataError(`subset must be a positive integer, got ${opts.subset}`);
  }

  const src = loadSource(opts.path, opts);
  const classes = src.classes;
  const K = classes.length;
  if (opts.expectClasses) {
    const e = opts.expectClasses;
    if (e.length !== K || e.some((c, i) => c !== classes[i])) {
      throw new DataError(
        `${src.location}: the dataset's classes [${classes.join(', ')}] differ from the expected classes ` +
        `[${e.join(', ')}] (from the checkpoint being resumed). Point --data at the same dataset, with the same class folders.`,
      );
    }
  }
  checkLabels(src.train, K);

  let testPart: SourcePart | undefined;
  let testLocation = '';
  if (testFraction > 0) {
    // The test split is carved out of the training source below.
  } else if (opts.testPath) {
    const t = loadTestSource(opts.testPath, classes, opts);
    testPart = t.part;
    testLocation = t.location;
  } else if (src.test) {
    testPart = src.test;
    testLocation = src.test.origin;
  }
  if (testPart) checkLabels(testPart, K);

  // Split on labels before decoding, so a subset run decodes only what it uses.
  const N = src.train.labels.length;
  const split = stratifiedSplit(src.train.labels, K, valFraction, seed, testFraction);
  const trainIdx = opts.subset !== undefined ? stratifiedSubset(split.train, src.train.labels, K, opts.subset, seed) : split.train;
  let needed: Int32Array;
  const used = trainIdx.length + split.val.length + split.test.length;
  if (used < (src.train.kind === 'generated' ? N : 0.5 * N)) {
    const all = new Int32Array(used);
    all.set(trainIdx);
    all.set(split.val, trainIdx.length);
    all.set(split.test, trainIdx.length + split.val.length);
    needed = all.sort();
  } else {
    needed = Int32Array.from({ length: N }, (_, i) => i);
  }
  const testNeeded = testPart ? Int32Array.from({ length: testPart.labels.length }, (_, i) => i) : null;

  const decodeCount = (p: SourcePart | undefined, n: number): number =>
    p && p.kind !== 'generated' && !(p.kind === 'raw' && p.height === h && p.width === w) ? n : 0;
  const ctx: Ctx = {
    H: h, W: w,
    cacheDir: opts.noCache ? null : opts.cacheDir || defaultCacheDir(),
    concurrency: opts.decodeConcurrency ?? Math.max(4, 4 * Math.max(1, os.availableParallelism?.() ?? os.cpus().length)),
    progress: { done: 0, total: decodeCount(src.train, needed.length) + decodeCount(testPart, testNeeded?.length ?? 0) },
  };
  if (opts.onProgress) ctx.progress.cb = opts.onProgress;
  if (ctx.cacheDir) removeStaleTemps(ctx.cacheDir);

  const mTrain = await materialise(src.train, needed, ctx);
  const mTest = testPart ? await materialise(testPart, testNeeded!, ctx) : null;

  checkEveryClassReadable(src.train, mTrain, classes);
  const train = makeSet('train', mTrain, src.train.labels, trainIdx, h, w, C);
  const val = makeSet('val', mTrain, src.train.labels, split.val, h, w, C);
  const test = mTest
    ? makeSet('test', mTest, testPart!.labels, testNeeded!, h, w, C)
    : testFraction > 0 ? makeSet('test', mTrain, src.train.labels, split.test, h, w, C) : undefined;
  if (testFraction > 0) testLocation = `a held-out ${(testFraction * 100).toFixed(0)}% of ${src.location}`;

  const decoded = [mTrain, mTest].filter((m): m is Materialised => m !== null && m.cache !== 'none');
  const skipped = [...mTrain.skipped, ...(mTest?.skipped ?? [])];
  const loc = src.location;
  let source = `${src.format} ${loc} (${N} images, ${K} classes; train ${train.count}` +
    `${opts.subset !== undefined ? ` (subset of ${split.train.length})` : ''}, val ${val.count}`;
  if (test) source += `; test ${test.count} from ${testLocation}`;
  if (skipped.length) source += `; ${skipped.length} skipped`;
  source += ')';

  const result: PreparedData = {
    classes: [...classes], train, val,
    preprocess: { size: [h, w], mean: norm.mean, std: norm.std },
    skipped, source,
    warnings: [...(src.warnings ?? []), ...splitWarnings(classes, { train, val, ...(test ? { test } : {}) })],
    cacheHit: decoded.length > 0 && decoded.every((m) => m.cache === 'hit'),
    cacheFiles: decoded.map((m) => m.cacheFile).filter((f): f is string => !!f),
    cacheWritten: Promise.all(decoded.map((m) => m.written)).then(() => undefined),
  };
  if (test) result.test = test;
  return result;
}
