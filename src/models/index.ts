/**
 * Built-in architectures, written from scratch with seeded random initialisation, so runs and
 * tests never need a downloaded model. Graphs are opset 17, input `input` [N,3,S,S],
 * output `logits` [N,J], named like PyTorch's exporter (block finding by module scope works),
 * with metadata `sff.model`, `sff.preprocess` and (where the BP head has dropout) `sff.dropout`.
 */
import type { Model } from '../ir/graph.js';
import { DataType } from '../ir/types.js';
import { numElements } from '../ir/tensor.js';
import { buildCnn } from './cnn.js';
import { buildResnet18 } from './resnet18.js';
import { buildMobilenetV3Small } from './mobilenetv3Small.js';
import { foldBatchNorms } from './foldBn.js';

export { foldBatchNorms } from './foldBn.js';
export { scopeOf, type Preprocess } from './layers.js';
export { InitRng, type WeightInit } from './init.js';

export const BUILTIN_MODELS = ['cnn', 'cnnb', 'resnet18', 'mobilenetv3-small'] as const;
export type BuiltinModel = (typeof BUILTIN_MODELS)[number];

export interface CreateModelOptions {
  /** Output classes J (default 10). */
  classes?: number;
  /** Input height = width S (default 32 for cnn/cnnb, 224 for resnet18/mobilenetv3-small). */
  imageSize?: number;
  /** Initialisation seed (default 0). */
  seed?: number;
  /** Fold BatchNorm into the preceding convs, like an eval-mode export (default false). */
  foldBn?: boolean;
}

export const DEFAULT_IMAGE_SIZE: Record<BuiltinModel, number> = { cnn: 32, cnnb: 32, resnet18: 224, 'mobilenetv3-small': 224 };

export function isBuiltinModel(kind: string): kind is BuiltinModel {
  return (BUILTIN_MODELS as readonly string[]).includes(kind);
}

function positiveInt(what: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min) throw new Error(`${what} must be an integer ≥ ${min}, got ${v}`);
  return v;
}

export function createModel(kind: BuiltinModel, opts: CreateModelOptions = {}): Model {
  if (!isBuiltinModel(kind)) throw new Error(`unknown model '${String(kind)}'; built-in models: ${BUILTIN_MODELS.join(', ')}`);
  const classes = positiveInt('classes', opts.classes ?? 10, 1);
  const imageSize = positiveInt('image size', opts.imageSize ?? DEFAULT_IMAGE_SIZE[kind], 4);
  const seed = opts.seed ?? 0;
  if (!Number.isSafeInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
  const o = { classes, imageSize, seed };
  const model =
    kind === 'cnn' || kind === 'cnnb'
      ? buildCnn({ ...o, batchNorm: kind === 'cnnb' })
      : kind === 'resnet18'
        ? buildResnet18(o)
        : buildMobilenetV3Small(o);
  if (opts.foldBn) foldBatchNorms(model);
  return model;
}

/**
 * Trainable parameters, counted as PyTorch does: float initializers, excluding BatchNorm
 * running statistics (inputs 3 and 4 of BatchNormalization).
 */
export function countParameters(model: Model): number {
  const g = model.graph;
  const stats = new Set<string>();
  for (const n of g.nodes) if (n.opType === 'BatchNormalization') for (const i of n.inputs.slice(3, 5)) if (i) stats.add(i);
  let total = 0;
  for (const t of g.initializers.values())
    if (!stats.has(t.name) && (t.dataType === DataType.FLOAT || t.dataType === DataType.FLOAT16 || t.dataType === DataType.BFLOAT16 || t.dataType === DataType.DOUBLE))
      total += numElements(t.dims);
  return total;
}
