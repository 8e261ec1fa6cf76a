/**
 * Top-1 accuracy of any exported classifier on a dataset: an sff-finetune
 * export (classes and preprocessing from its metadata) or a plain classifier
 * (preprocessing from options).
 */
import { batches, DATA_DEFAULTS, prepareData, type ImageSet } from '../data/index.js';
import { loadModel } from '../onnx/io.js';
import { getMetadata } from '../ir/graph.js';
import { chooseImageSize, parseImageSize } from '../import/index.js';
import { accuracy } from '../sff/ensemble.js';
import { formatShares, parseSplit, type SplitRecord } from '../data/split.js';
import { SPLIT_METADATA_KEY } from '../export/sidecar.js';
import { resolveInput } from '../util/paths.js';
import { createSession, type RuntimeOptions } from '../runtime/session.js';
import { imagesTensor } from '../runtime/tensors.js';
import { RunProgress } from '../train/progress.js';
import type { ProgressEvent } from '../train/events.js';

export interface EvalOptions extends RuntimeOptions {
  data: string;
  /** Which split to score: test (when the data has one), val (the 80/20 cut by seed), train, or all. Default: test if present, else val. */
  split?: 'test' | 'val' | 'train' | 'all';
  seed?: number;
  valFraction?: number;
  /** The train/val/test shares the model was trained with (train's --split, e.g. "70/15/15"): selects the same held-out test images. */
  shares?: string;
  normalize?: string;
  imageSize?: number | [number, number];
  batchSize?: number;
  cacheDir?: string;
  /** Output to score (default `scores`, else the model's first output). */
  output?: string;
  /** Progress of decoding the images and of scoring them (phases `decode` and `evaluate`), as in training. */
  onProgress?: (e: ProgressEvent) => void;
}

export interface EvalReport {
  model: string;
  split: string;
  images: number;
  accuracy: number;
  perClass: { name: string; count: number; accuracy: number }[];
  output: string;
  /**
   * The cut of the data the split was taken from: `recorded` when the model's training run used
   * this same data (its seed and shares, unless overridden), `options` when given, else `default`.
   */
  selection: { seed: number; shares: string; from: 'recorded' | 'options' | 'default' };
  /** For sff exports: accuracy of each block's goodness on its own. */
  blocks?: { output: string; accuracy: number }[];
}

export async function evaluateModel(modelPath: string, opts: EvalOptions): Promise<EvalReport> {
  const model = loadModel(modelPath);
  const input = model.graph.feedInputs()[0];
  if (!input || input.type?.kind !== 'tensor' || !input.type.shape || input.type.shape.length !== 4)
    throw new Error(`${modelPath}: expected one image input [N,C,H,W], found ${input ? JSON.stringify(input.type) : 'none'}`);
  const classesMeta = getMetadata(model, 'sff.classes');
  const preMeta = getMetadata(model, 'sff.preprocess');
  const pre = preMeta ? (JSON.parse(preMeta) as { size: [number, number]; mean: number[]; std: number[] }) : undefined;
  const shape = input.type.shape;
  const explicit = parseImageSize(opts.imageSize);
  const size: [number, number] = pre?.size ?? chooseImageSize(model, input.name, shape, explicit ? { explicit } : {}).size;
  const normalize = opts.normalize ?? (pre ? `${pre.mean.join(',')}/${pre.std.join(',')}` : DATA_DEFAULTS.normalize);
  const selection = chooseSelection(opts, getMetadata(model, SPLIT_METADATA_KEY));
  const progress = new RunProgress((e) => opts.onProgress?.(e));
  const decode = progress.lazyPhase('decode', 'images');
  const data = await prepareData({
    path: opts.data,
    imageSize: size,
    channels: Number(shape[1]) || 3,
    normalize,
    seed: selection.seed,
    valFraction: selection.valFraction,
    ...(selection.testFraction > 0 ? { testFraction: selection.testFraction } : {}),
    ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}),
    ...(opts.onProgress ? { onProgress: decode.update } : {}),
  });
  decode.end();
  const modelClasses: string[] | undefined = classesMeta ? JSON.parse(classesMeta) : undefined;
  // Map the dataset's labels to the model's output indices by class name.
  const labelMap = data.classes.map((c, i) => {
    if (!modelClasses) return i;
    const j = modelClasses.indexOf(c);
    if (j < 0) throw new Error(`class '${c}' of ${opts.data} is not one of the model's classes (${modelClasses.join(', ')})`);
    return j;
  });
  const splitName = opts.split ?? (data.test ? 'test' : 'val');
  const sets: ImageSet[] = splitName === 'all' ? [data.train, data.val, ...(data.test ? [data.test] : [])] : [pickSplit(data, splitName)];
  const outputs = model.graph.outputs.map((o) => o.name);
  const output = opts.output ?? (outputs.includes('scores') ? 'scores' : outputs[0]!);
  const blockOutputs = outputs.filter((o) => o.startsWith('goodness_'));
  const session = await createSession(model, opts);
  const labels: number[] = [];
  const rows: Float32Array[] = [];
  const blockRows: Float32Array[][] = blockOutputs.map(() => []);
  let J = 0;
  const batchSize = opts.batchSize ?? 64;
  const scoring = progress.phase('evaluate', sets.reduce((n, s) => n + s.count, 0), 'images');
  for (const set of sets) {
    const dims = [set.channels, set.height, set.width];
    for await (const batch of batches(set, { batchSize, shuffle: false, seed: 0, epoch: 0, mean: data.preprocess.mean, std: data.preprocess.std })) {
      const x = imagesTensor(batch.x, batch.n, dims);
      const out = await session.run({ [input.name]: x });
      const s = out[output];
      if (!s) throw new Error(`${modelPath}: no output '${output}' (outputs: ${outputs.join(', ')})`);
      J = s.dims.at(-1)!;
      rows.push(Float32Array.from(s.data as Float32Array));
      blockOutputs.forEach((b, k) => blockRows[k]!.push(Float32Array.from(out[b]!.data as Float32Array)));
      for (let i = 0; i < batch.n; i++) labels.push(labelMap[Number(batch.y[i])]!);
      scoring.update(labels.length);
    }
  }
  scoring.end();
  await session.release();
  const concat = (parts: Float32Array[]) => {
    const all = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) {
      all.set(p, o);
      o += p.length;
    }
    return all;
  };
  const scores = concat(rows);
  const names = modelClasses ?? data.classes;
  const perClass = names.map((name, c) => {
    const idx = labels.flatMap((l, i) => (l === c ? [i] : []));
    const sub = new Float32Array(idx.length * J);
    idx.forEach((i, r) => sub.set(scores.subarray(i * J, (i + 1) * J), r * J));
    return { name, count: idx.length, accuracy: accuracy(sub, idx.map(() => c), J) };
  });
  return {
    model: modelPath,
    split: splitName,
    images: labels.length,
    accuracy: accuracy(scores, labels, J),
    perClass: perClass.filter((p) => p.count > 0),
    output,
    selection: { seed: selection.seed, shares: formatShares(selection), from: selection.from },
    ...(blockOutputs.length ? { blocks: blockOutputs.map((o, k) => ({ output: o, accuracy: accuracy(concat(blockRows[k]!), labels, J) })) } : {}),
  };
}

/**
 * Seed and shares of the cut to score. Shares: `shares`, else `valFraction`, else the training
 * run's recorded cut when `data` is the data it trained on, else 80/20. Seed: `seed`, else the
 * recorded one (same data), else 0. Another dataset never inherits the recorded cut.
 */
export function chooseSelection(opts: EvalOptions, recordedJson: string | undefined): Omit<SplitRecord, 'data'> & { from: EvalReport['selection']['from'] } {
  const rec = recordedJson ? (JSON.parse(recordedJson) as SplitRecord) : undefined;
  const same = rec !== undefined && rec.data === resolveInput(opts.data);
  const given = opts.shares !== undefined || opts.valFraction !== undefined || opts.seed !== undefined;
  const shares = opts.shares ? parseSplit(opts.shares) : opts.valFraction !== undefined ? { valFraction: opts.valFraction, testFraction: 0 } : same ? rec : { valFraction: DATA_DEFAULTS.valFraction, testFraction: 0 };
  const seed = opts.seed ?? (same ? rec.seed : 0);
  return { seed, valFraction: shares.valFraction, testFraction: shares.testFraction, from: given ? 'options' : same ? 'recorded' : 'default' };
}

function pickSplit(data: Awaited<ReturnType<typeof prepareData>>, split: 'test' | 'val' | 'train'): ImageSet {
  if (split === 'test') {
    if (!data.test) throw new Error(`the data has no test split; use --split val (the validation cut by --seed) or point --data at a test set`);
    return data.test;
  }
  return split === 'val' ? data.val : data.train;
}
