/**
 * The per-block SFF head (the paper's aux head): optional per-sample LayerNorm over (C,H,W)
 * with a per-channel affine, an auxiliary k×k conv to J channels, and the
 * goodness g[n,j] = mean over (h,w) of A[n,j,h,w]².
 *
 * Cheaper heads (the paper's conclusion proposes more efficient pooling): with a pool
 * factor p > 1 the aux conv reads the (normalised) block output average-pooled p×p
 * (stride p), so its cost drops by p². The goodness is a spatial mean of squares, which
 * the pooled map estimates at lower resolution; the conv's weights keep their shape.
 */
import type { GraphBuilder } from '../ir/builder.js';
import { Rng } from '../util/rng.js';

/** Where the normalisation sits: in the chain (paper), only before the aux head, or nowhere. */
export type NormPlacement = 'chain' | 'head' | 'none';

export interface HeadParam {
  name: string;
  dims: number[];
  init: Float32Array;
}

export interface HeadSpec {
  channels: number;
  classes: number;
  kernel: number;
  norm: NormPlacement;
  seed: number;
  /** Average-pool factor applied before the aux conv (1 or absent: none); see `resolveHeadPool`. */
  pool?: number;
}

/** `--head-pool`: 'off', a fixed factor N, or 'auto' (by the block output's size). */
export type HeadPoolSetting = 'auto' | 'off' | number;

/** Default `--head-pool`: the paper's head (no pooling) until a cheaper one is measured to hold accuracy (bench/README.md). */
export const DEFAULT_HEAD_POOL: HeadPoolSetting = 'off';

/** 'auto' pools by the largest power of two that leaves the aux conv at least this many rows and columns. */
export const HEAD_POOL_AUTO_MIN_SIDE = 8;

/** Parses a `--head-pool` value; the error names the flag and the accepted values. */
export function parseHeadPool(value: string | number, flag = '--head-pool'): HeadPoolSetting {
  const v = String(value).trim();
  if (v === 'auto' || v === 'off') return v;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} ${v}: give auto, off, or a whole pool factor ≥ 1 (e.g. 2 pools the block output 2×2 before the aux conv)`);
  return n === 1 ? 'off' : n;
}

/**
 * The pool factor for a block whose output is [C, ...spatial]: 1 for 'off', the factor for N
 * (capped so at least one row and column remain), for 'auto' the largest power of two p
 * with min(spatial)/p ≥ HEAD_POOL_AUTO_MIN_SIDE (ResNet18 224: 56 → 14, 28 → 14, 14 unpooled;
 * CNNB 32: 16 → 8, 8 unpooled).
 */
export function resolveHeadPool(setting: HeadPoolSetting, spatial: readonly number[]): number {
  if (setting === 'off' || spatial.length !== 2) return 1;
  const side = Math.min(...spatial);
  if (setting !== 'auto') return Math.max(1, Math.min(setting, side));
  let p = 1;
  while (side / (2 * p) >= HEAD_POOL_AUTO_MIN_SIDE) p *= 2;
  return p;
}

export interface HeadOutputs {
  /** What the next block receives (Z for 'chain', else Y). */
  next: string;
  /** [B, J] goodness matrix. */
  goodness: string;
}

export const LAYERNORM_EPS = 1e-5;

/** Default aux kernel: 5 when J ≤ 10, else 3 (the paper's choice). */
export function defaultAuxKernel(classes: number): number {
  return classes <= 10 ? 5 : 3;
}

/** The head's parameters with their initial values (LN: γ=1, β=0; conv: PyTorch's default uniform ±1/√fan_in). */
export function headParams(spec: HeadSpec, prefix: string): HeadParam[] {
  const { channels: c, classes: j, kernel: k } = spec;
  const rng = new Rng(spec.seed);
  const bound = 1 / Math.sqrt(c * k * k);
  const out: HeadParam[] = [];
  if (spec.norm !== 'none') {
    out.push({ name: `${prefix}.norm.weight`, dims: [c, 1, 1], init: new Float32Array(c).fill(1) });
    out.push({ name: `${prefix}.norm.bias`, dims: [c, 1, 1], init: new Float32Array(c) });
  }
  out.push({ name: `${prefix}.aux.weight`, dims: [j, c, k, k], init: Float32Array.from({ length: j * c * k * k }, () => rng.uniform(-bound, bound)) });
  out.push({ name: `${prefix}.aux.bias`, dims: [j], init: Float32Array.from({ length: j }, () => rng.uniform(-bound, bound)) });
  return out;
}

/** Per-sample normalisation over (C,H,W) with per-channel scale and shift (GroupNorm with one group). */
export function appendLayerNorm(b: GraphBuilder, y: string, weight: string, bias: string): string {
  // Opset 17: ReduceMean takes its axes as an attribute (an input only from opset 18).
  const axes = [1, 2, 3];
  const mean = b.op('ReduceMean', [y], { axes, keepdims: 1 }, 'ln/mean');
  const centred = b.op('Sub', [y, mean], {}, 'ln/centre');
  const sq = b.op('Mul', [centred, centred], {}, 'ln/square');
  const variance = b.op('ReduceMean', [sq], { axes, keepdims: 1 }, 'ln/var');
  const std = b.op('Sqrt', [b.op('Add', [variance, b.constFloat([LAYERNORM_EPS], [], 'ln_eps')], {}, 'ln/var_eps')], {}, 'ln/std');
  const z = b.op('Div', [centred, std], {}, 'ln/normalise');
  return b.op('Add', [b.op('Mul', [z, weight], {}, 'ln/scale'), bias], {}, 'ln/shift');
}

/**
 * Appends the head to block output `y`. `param(name)` maps a head parameter
 * name (from `headParams`) to the graph value holding it.
 */
export function appendHead(b: GraphBuilder, y: string, spec: HeadSpec, prefix: string, param: (name: string) => string): HeadOutputs {
  const z = spec.norm === 'none' ? y : appendLayerNorm(b, y, param(`${prefix}.norm.weight`), param(`${prefix}.norm.bias`));
  const pool = spec.pool ?? 1;
  const headIn = pool > 1 ? b.op('AveragePool', [z], { kernel_shape: [pool, pool], strides: [pool, pool] }, 'aux/pool') : z;
  const p = Math.floor(spec.kernel / 2);
  const q = spec.kernel - 1 - p;
  const a = b.op('Conv', [headIn, param(`${prefix}.aux.weight`), param(`${prefix}.aux.bias`)], { kernel_shape: [spec.kernel, spec.kernel], pads: [p, p, q, q] }, 'aux/Conv');
  const sq = b.op('Mul', [a, a], {}, 'goodness/square');
  const goodness = b.op('ReduceMean', [sq], { axes: [2, 3], keepdims: 0 }, 'goodness/mean');
  return { next: spec.norm === 'chain' ? z : y, goodness };
}

/**
 * SFF loss: mean_n(logsumexp_j g − g[n, y_n]) = softmax cross-entropy with goodness as logits.
 * `labels` is int64 [N] or, when the graph declares it so, [N, 1] (GatherElements' index shape:
 * the train step declares that, because GPU EPs run int64 reshapes on the CPU).
 */
/** The labels as a [B, 1] column for GatherElements (the train step may already feed them so). */
export function labelColumn(b: GraphBuilder, labels: string): string {
  const column = b.graph.tensorType(labels)?.shape?.length === 2;
  return column ? labels : b.op('Unsqueeze', [labels, b.constInt64([1], [1], 'label_axis')], {}, 'loss/labels');
}

export function appendGoodnessLoss(b: GraphBuilder, goodness: string, labels: string): string {
  const logp = b.op('LogSoftmax', [goodness], { axis: 1 }, 'loss/LogSoftmax');
  const picked = b.op('GatherElements', [logp, labelColumn(b, labels)], { axis: 1 }, 'loss/pick');
  const nll = b.op('ReduceMean', [picked], { axes: [0, 1], keepdims: 0 }, 'loss/mean');
  return b.op('Neg', [nll], {}, 'loss/Neg');
}
