/**
 * Starting the head block's J-way linear map from the pretrained classifier.
 *
 * When the new classes are (or resemble) classes the network was trained on — Imagenette's
 * ten are ImageNet classes — the pretrained classifier already scores them. Each new class
 * is matched to the source class the untouched network rates most probable on that class's
 * training images (a one-to-one greedy assignment over mean probabilities), and the J-way
 * map starts from those classifier rows. Only training images are read: the choice never
 * sees validation or test data. Where the match is poor the rows are still a start that
 * training moves away from; `--head-init random` starts from PyTorch's default instead.
 */
import { batches, U8ImageSet, type ImageSet } from '../data/index.js';
import { attrInt } from '../ir/attrs.js';
import { createSession, type RuntimeOptions } from '../runtime/session.js';
import { imagesTensor } from '../runtime/tensors.js';
import type { PreparedData } from '../data/index.js';
import type { RunConfig } from './runConfig.js';
import type { FinetuneEvent } from './events.js';
import type { PreparedModel } from './model.js';

export interface MatchedClassifier {
  /** [J, C] rows and [J] biases of the pretrained classifier, in the new class order. */
  weight: Float32Array;
  bias: Float32Array;
  /** Source class index matched to each new class, and its mean probability on that class's images. */
  source: number[];
  meanProb: number[];
  images: number;
}

/** Up to `perClass` images of each class, the first in storage order (deterministic). */
function perClassSample(set: ImageSet, classes: number, perClass: number): ImageSet {
  const taken = new Array(classes).fill(0);
  const rows: number[] = [];
  const labels: number[] = [];
  for (let i = 0; i < set.count; i++) {
    const c = set.labels[i]!;
    if (taken[c]! >= perClass) continue;
    taken[c]!++;
    rows.push(set.rows[i]!);
    labels.push(c);
  }
  return new U8ImageSet('val', set.store, set.storedChannels, set.height, set.width, set.channels, Int32Array.from(rows), Int32Array.from(labels));
}

/** [K, C] rows and [K] biases of the classifier node (Conv 1×1, Gemm or MatMul+Add), or undefined. */
function classifierRows(pm: PreparedModel): { rows: (k: number) => Float32Array; bias: (k: number) => number; sourceClasses: number; features: number } | undefined {
  const im = pm.imported;
  const g = im.model.graph;
  const node = im.head.nodes.find((n) => n.name === im.head.classifier);
  const w = node ? g.initializers.get(node.inputs[1]!) : undefined;
  if (!node || !w) return undefined;
  const wd = new Float32Array(w.raw.slice().buffer);
  let biasName: string | undefined = node.inputs[2];
  if (node.opType === 'MatMul') biasName = g.nodes.find((n) => n.opType === 'Add' && n.inputs.includes(node.outputs[0]!))?.inputs.find((i) => g.initializers.has(i));
  const b = biasName ? g.initializers.get(biasName) : undefined;
  const bd = b ? new Float32Array(b.raw.slice().buffer) : undefined;
  const bias = (k: number) => bd?.[k] ?? 0;
  if (node.opType === 'Conv' && w.dims.slice(2).every((d) => d === 1)) {
    const [K, C] = w.dims as [number, number];
    return { rows: (k) => wd.slice(k * C, (k + 1) * C), bias, sourceClasses: K, features: C };
  }
  const transposed = node.opType === 'Gemm' ? attrInt(node, 'transB', 0) === 1 : node.opType === 'MatMul' ? false : undefined;
  if (transposed === undefined || w.dims.length !== 2) return undefined;
  const [K, C] = transposed ? (w.dims as [number, number]) : [w.dims[1]!, w.dims[0]!];
  return { rows: (k) => (transposed ? wd.slice(k * C, (k + 1) * C) : Float32Array.from({ length: C }, (_, c) => wd[c * K + k]!)), bias, sourceClasses: K, features: C };
}

/**
 * Matches each of `classes` new classes to a source class of the pretrained network on up to
 * `perClass` training images per class; undefined when the model's classifier cannot be read
 * as a linear map on the head block's output.
 */
export async function matchPretrainedClassifier(
  pm: PreparedModel, train: ImageSet, classes: number, pre: { mean: number[]; std: number[] }, rt: RuntimeOptions, perClass = 16,
): Promise<MatchedClassifier | undefined> {
  const cls = classifierRows(pm);
  const head = pm.headBlock;
  if (!cls || !head || head.outputShape[0] !== cls.features || cls.sourceClasses < classes) return undefined;
  const sample = perClassSample(train, classes, perClass);
  const session = await createSession(pm.imported.model, rt);
  const output = pm.imported.model.graph.outputs[0]!.name;
  const K = cls.sourceClasses;
  const probSum = new Float64Array(classes * K);
  const count = new Array(classes).fill(0);
  const dims = [sample.channels, sample.height, sample.width];
  const batchSize = pm.imported.dynamicBatch ? 32 : 1;
  for await (const batch of batches(sample, { batchSize, shuffle: false, seed: 0, epoch: 0, mean: pre.mean, std: pre.std })) {
    const out = await session.run({ [pm.inputName]: imagesTensor(batch.x, batch.n, dims) });
    const p = out[output]!.data as Float32Array;
    const width = p.length / batch.n;
    for (let i = 0; i < batch.n; i++) {
      const row = p.subarray(i * width + (width - K), (i + 1) * width);
      // Graph outputs may be logits or probabilities: softmax either way (idempotent enough for an argmax of means).
      const max = row.reduce((a, v) => Math.max(a, v), -Infinity);
      const isProb = Math.abs(row.reduce((a, v) => a + v, 0) - 1) < 1e-3 && row.every((v) => v >= 0);
      const z = isProb ? 1 : row.reduce((a, v) => a + Math.exp(v - max), 0);
      const c = Number(batch.y[i]);
      count[c]++;
      for (let k = 0; k < K; k++) probSum[c * K + k]! += isProb ? row[k]! : Math.exp(row[k]! - max) / z;
    }
  }
  await session.release();
  // Greedy one-to-one assignment: the highest remaining mean probability first.
  const source = new Array<number>(classes).fill(-1);
  const meanProb = new Array<number>(classes).fill(0);
  const usedSource = new Set<number>();
  for (let round = 0; round < classes; round++) {
    let best = -1;
    let bj = -1;
    let bk = -1;
    for (let j = 0; j < classes; j++) {
      if (source[j] !== -1 || count[j] === 0) continue;
      for (let k = 0; k < K; k++) {
        if (usedSource.has(k)) continue;
        const m = probSum[j * K + k]! / count[j];
        if (m > best) [best, bj, bk] = [m, j, k];
      }
    }
    if (bj < 0) break;
    source[bj] = bk;
    meanProb[bj] = best;
    usedSource.add(bk);
  }
  if (source.some((s) => s < 0)) return undefined; // a class without training images
  const C = cls.features;
  const weight = new Float32Array(classes * C);
  source.forEach((k, j) => weight.set(cls.rows(k), j * C));
  return { weight, bias: Float32Array.from(source, (k) => cls.bias(k)), source, meanProb, images: sample.count };
}

/**
 * The head block's starting J-way map for a fresh SFF run with `--head-init matched`: the
 * pretrained classifier's rows matched on training images (none on resume: the checkpoint has it).
 */
export async function headInitFor(
  cfg: Pick<RunConfig, 'method' | 'headBlock' | 'headInit' | 'classes'>, pm: PreparedModel, data: PreparedData, rt: RuntimeOptions, resumed: boolean, emit: (e: FinetuneEvent) => void,
): Promise<MatchedClassifier | undefined> {
  if (cfg.method !== 'sff' || !cfg.headBlock || (cfg.headInit ?? 'random') !== 'matched' || resumed) return undefined;
  const headInit = await matchPretrainedClassifier(pm, data.train, cfg.classes.length, data.preprocess, rt);
  emit({ type: 'head-init', classes: cfg.classes, ...(headInit ? { matched: { source: headInit.source, meanProb: headInit.meanProb, images: headInit.images } } : {}) });
  return headInit;
}
