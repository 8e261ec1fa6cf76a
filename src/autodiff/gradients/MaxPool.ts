/**
 * Gradient of MaxPool (any rank, pads, strides, dilations, ceil_mode,
 * auto_pad): dY is scattered onto the arg-max positions.
 *
 * The arg-max positions are MaxPool's optional second output, Indices (int64,
 * flattened over the whole NCHW input, padding not counted — storage_order 0).
 *  - If the forward node already outputs Indices (the training-graph builder
 *    may rewrite MaxPool nodes to expose it: add a second output name), the
 *    rule uses it.
 *  - Otherwise the rule appends its own MaxPool-with-Indices on the same input
 *    (same attributes). That recomputes the pool once in the backward but keeps
 *    the forward node on onnxruntime's Indices-free kernel, which is ~4× faster
 *    than the Indices variant (ResNet stem 3×3/2 on [32,64,112,112], 2 threads:
 *    37 ms vs 156 ms); forward+backward totals measured equal (~300 ms) either
 *    way, so the training-graph builder does NOT need to rewrite MaxPool nodes.
 *    Both give identical arg-max choices (first maximum in window order).
 * Scatter: ScatterElements(reduction='add') of the flattened dY into zeros of
 * N·C·H·W elements (windows overlap when kernel > stride; opset ≥ 16). When
 * windows cannot overlap (kernel·dilation ≤ stride on every axis) a plain
 * ScatterElements is used, which also works before opset 16.
 */
import { attrInt, attrInts } from '../../ir/attrs.js';
import { floatTensor } from '../../ir/tensor.js';
import type { GradRule } from '../types.js';
import { product, reshape } from '../helpers.js';

export const MaxPool: GradRule = (ctx) => {
  const { node, b } = ctx;
  const res: (string | undefined)[] = node.inputs.map(() => undefined);
  const dy = ctx.gradOutput(0);
  if (!dy || !ctx.needsGrad(0)) return res;
  if (attrInt(node, 'storage_order', 0) !== 0)
    throw new Error(`MaxPool gradient: node '${node.name}' has storage_order=1 (column-major indices), which is not supported`);
  const x = node.inputs[0]!;
  const xs = ctx.shape(x);
  const ys = ctx.shape(node.outputs[0]!);
  let indices = node.outputs[1];
  if (!indices) {
    const attrs: Record<string, import('../../ir/attrs.js').AttrValue> = {};
    for (const [k, v] of Object.entries(node.attrs)) attrs[k] = v;
    indices = b.node('MaxPool', [x], attrs, { outputs: 2, name: 'MaxPoolIndices' })[1]!;
  }
  const kernel = attrInts(node, 'kernel_shape');
  const strides = attrInts(node, 'strides', kernel.map(() => 1));
  const dil = attrInts(node, 'dilations', kernel.map(() => 1));
  const overlap = kernel.some((k, i) => (k - 1) * dil[i]! + 1 > strides[i]!);
  const n = product(xs);
  const z = b.op('ConstantOfShape', [b.constInt64([n], [1], 'shape')], { value: floatTensor('value', [1], [0]) }, 'Zeros');
  const idx = reshape(b, indices, [product(ys)]);
  const upd = reshape(b, dy, [product(ys)]);
  if (overlap && ctx.opset < 16)
    throw new Error(`MaxPool gradient: node '${node.name}' has overlapping windows, which needs ScatterElements(reduction='add') (opset ≥ 16; graph is opset ${ctx.opset})`);
  const scat = b.op('ScatterElements', [z, idx, upd], { axis: 0, reduction: overlap ? 'add' : undefined });
  res[0] = reshape(b, scat, xs);
  return res;
};
