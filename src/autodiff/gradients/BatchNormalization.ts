/**
 * Gradient of BatchNormalization (inputs X, scale, B, input_mean, input_var).
 *
 * Training mode (attribute training_mode = 1, opset ≥ 14; outputs Y,
 * running_mean, running_var): Y uses the batch statistics, so
 *   x̂ = (X − μ_B)·invstd,  invstd = 1/√(σ²_B + ε)  (σ²_B biased, over N and spatial: M values/channel)
 *   dX     = scale·invstd · (dY − Σdy/M − x̂·Σ(dy·x̂)/M)
 *   dscale = Σ dy·x̂,   dB = Σ dy
 * μ_B and invstd are recomputed in the backward (ReduceMean), which keeps the
 * forward node untouched. No gradient flows from the running-stat outputs.
 *
 * Inference mode (training_mode absent/0): Y = scale·(X − mean)/√(var + ε) + B,
 * a per-channel affine; gradients for X, scale, B (and mean/var if asked).
 *
 * Running statistics convention (for the training-graph builder):
 *   onnxruntime's CPU kernel in training mode returns
 *     running_mean' = momentum·running_mean + (1 − momentum)·μ_B
 *     running_var'  = momentum·running_var  + (1 − momentum)·σ²_B   (σ²_B BIASED)
 *   PyTorch instead updates running_var with the UNBIASED variance σ²_B·M/(M−1),
 *   and its momentum is 1 − the ONNX momentum (PyTorch 0.1 ⇔ ONNX 0.9).
 *   To match PyTorch, do not use outputs 1–2 of the node: call
 *   `bnRunningStatUpdate(b, node, shapeOfX, opset)`, which appends the update
 *   with the unbiased variance and returns [newMean, newVar] value names.
 *   (Verified against torch 1.13 in test/autodiff/pytorch-fixtures.test.ts.)
 */
import type { GraphBuilder } from '../../ir/builder.js';
import type { Node } from '../../ir/graph.js';
import { attrFloat, attrInt } from '../../ir/attrs.js';
import type { GradRule } from '../types.js';
import { reduce, reshape, unsqueeze } from '../helpers.js';

export function isTrainingBN(node: Node, opset: number): boolean {
  return opset >= 14 && attrInt(node, 'training_mode', 0) === 1;
}

function scalar(b: GraphBuilder, v: number): string {
  return b.constFloat([v], [], 'scalar');
}

interface Stats {
  mean: string;
  centered: string;
  invstd: string;
}

function batchStats(b: GraphBuilder, x: string, axes: number[], eps: number, opset: number): Stats {
  const mean = reduce(b, 'ReduceMean', x, axes, true, opset);
  const centered = b.op('Sub', [x, mean]);
  const v = reduce(b, 'ReduceMean', b.op('Mul', [centered, centered]), axes, true, opset);
  const invstd = b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [v, scalar(b, eps)])])]);
  return { mean, centered, invstd };
}

/**
 * BatchNormalization in training mode from elementwise ops and ReduceMean, for execution
 * providers without that mode (see autodiff/lowering.ts): Y = (X − μ_B)·invstd·scale + B with
 * the biased batch variance, as onnxruntime's CPU kernel computes it. `rank` is X's rank.
 */
export function bnTrainingForward(b: GraphBuilder, x: string, scale: string, bias: string, rank: number, eps: number, opset: number): string {
  const axes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
  const st = batchStats(b, x, axes, eps, opset);
  // [C] → [C, 1, …] so it broadcasts over N and the spatial axes.
  const perChannel = (v: string) => (rank > 2 ? unsqueeze(b, v, axes.slice(1).map((_, i) => i + 1), opset) : v);
  const normalised = b.op('Mul', [st.centered, st.invstd]);
  return b.op('Add', [b.op('Mul', [normalised, perChannel(scale)]), perChannel(bias)]);
}

/**
 * Appends the PyTorch-convention running-statistics update for a
 * BatchNormalization node (training or not): returns [newRunningMean, newRunningVar]
 * with newVar = m·var + (1−m)·σ²_B·M/(M−1), m = the node's ONNX momentum (default 0.9).
 * `xShape` is the static shape of the node's X.
 */
export function bnRunningStatUpdate(b: GraphBuilder, node: Node, xShape: number[], opset: number): [string, string] {
  const momentum = attrFloat(node, 'momentum', 0.9);
  const axes = [0, ...xShape.slice(2).map((_, i) => i + 2)];
  const C = xShape[1]!;
  const M = axes.reduce((p, a) => p * xShape[a]!, 1);
  const x = node.inputs[0]!;
  const mean = reduce(b, 'ReduceMean', x, axes, false, opset);
  const centered = b.op('Sub', [x, reshape(b, mean, [1, C, ...xShape.slice(2).map(() => 1)])]);
  const ss = reduce(b, 'ReduceSum', b.op('Mul', [centered, centered]), axes, false, opset);
  const unbiased = b.op('Mul', [ss, scalar(b, 1 / Math.max(M - 1, 1))]);
  const mix = (old: string, cur: string) =>
    b.op('Add', [b.op('Mul', [old, scalar(b, momentum)]), b.op('Mul', [cur, scalar(b, 1 - momentum)])]);
  return [mix(node.inputs[3]!, mean), mix(node.inputs[4]!, unbiased)];
}

export const BatchNormalization: GradRule = (ctx) => {
  const { node, b, opset } = ctx;
  const res: (string | undefined)[] = node.inputs.map(() => undefined);
  const dy = ctx.gradOutput(0);
  if (!dy) return res;
  const xs = ctx.shape(node.inputs[0]!);
  const C = xs[1]!;
  const axes = [0, ...xs.slice(2).map((_, i) => i + 2)];
  const bshape = [1, C, ...xs.slice(2).map(() => 1)];
  const M = axes.reduce((p, a) => p * xs[a]!, 1);
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const x = node.inputs[0]!;
  const scaleB = () => reshape(b, node.inputs[1]!, bshape);
  const toC = (v: string) => reshape(b, v, [C]);

  if (isTrainingBN(node, opset)) {
    const st = batchStats(b, x, axes, eps, opset);
    const xhat = b.op('Mul', [st.centered, st.invstd]);
    const sumDy = reduce(b, 'ReduceSum', dy, axes, true, opset);
    const sumDyXh = reduce(b, 'ReduceSum', b.op('Mul', [dy, xhat]), axes, true, opset);
    if (ctx.needsGrad(0)) {
      const k = b.op('Mul', [scaleB(), st.invstd]);
      const inner = b.op('Sub', [
        b.op('Sub', [dy, b.op('Mul', [sumDy, scalar(b, 1 / M)])]),
        b.op('Mul', [xhat, b.op('Mul', [sumDyXh, scalar(b, 1 / M)])]),
      ]);
      res[0] = b.op('Mul', [inner, k]);
    }
    if (ctx.needsGrad(1)) res[1] = toC(sumDyXh);
    if (ctx.needsGrad(2)) res[2] = toC(sumDy);
    return res;
  }

  // Inference mode: per-channel affine with fixed statistics.
  const meanB = reshape(b, node.inputs[3]!, bshape);
  const varB = reshape(b, node.inputs[4]!, bshape);
  const invstd = b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [varB, scalar(b, eps)])])]);
  const k = b.op('Mul', [scaleB(), invstd]);
  if (ctx.needsGrad(0)) res[0] = b.op('Mul', [dy, k]);
  const needCentered = ctx.needsGrad(1) || ctx.needsGrad(4);
  const centered = needCentered ? b.op('Sub', [x, meanB]) : '';
  const sumDy = ctx.needsGrad(2) || ctx.needsGrad(3) ? reduce(b, 'ReduceSum', dy, axes, true, opset) : '';
  if (ctx.needsGrad(1)) res[1] = toC(reduce(b, 'ReduceSum', b.op('Mul', [b.op('Mul', [dy, centered]), invstd]), axes, true, opset));
  if (ctx.needsGrad(2)) res[2] = toC(sumDy);
  if (ctx.needsGrad(3)) res[3] = toC(b.op('Neg', [b.op('Mul', [sumDy, k])]));
  if (ctx.needsGrad(4)) {
    // dvar = Σ dy·scale·(x−mean)·(−½)(var+ε)^(−3/2)
    const s = reduce(b, 'ReduceSum', b.op('Mul', [dy, centered]), axes, true, opset);
    const i3 = b.op('Mul', [b.op('Mul', [invstd, invstd]), invstd]);
    res[4] = toC(b.op('Mul', [b.op('Mul', [s, b.op('Mul', [scaleB(), i3])]), scalar(b, -0.5)]));
  }
  return res;
};
