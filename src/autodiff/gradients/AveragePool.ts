/**
 * Gradient of AveragePool (pads, strides, auto_pad, ceil_mode, dilations,
 * count_include_pad 0 or 1, any spatial rank ConvTranspose supports).
 *
 * Y[o] = Σ_{x ∈ window(o) ∩ input} X[x] / D[o], so dX = ConvTranspose(dY / D, ones).
 * D[o] (the runtime's divisor, which differs between count_include_pad modes
 * and at ceil_mode edges) is obtained exactly, without re-deriving the
 * runtime's edge conventions: 1/D = AveragePool(ones)[o] / count[o], where
 * count[o] (the real input elements in window o) is a static constant and
 * AveragePool(ones) runs on a [1, 1, H, W] tensor of ones (constant-folded).
 */
import { attrInts } from '../../ir/attrs.js';
import { floatTensor } from '../../ir/tensor.js';
import type { GradRule } from '../types.js';
import { product, reshape } from '../helpers.js';
import { resolveWindow, transposePads } from './_window.js';

export const AveragePool: GradRule = (ctx) => {
  const { node, b } = ctx;
  const res: (string | undefined)[] = node.inputs.map(() => undefined);
  const dy = ctx.gradOutput(0);
  if (!dy || !ctx.needsGrad(0)) return res;
  const xs = ctx.shape(node.inputs[0]!);
  const ys = ctx.shape(node.outputs[0]!);
  const inSp = xs.slice(2);
  const outSp = ys.slice(2);
  const kernel = attrInts(node, 'kernel_shape');
  const w = resolveWindow(node, kernel, inSp, outSp);
  const r = kernel.length;
  // count[o]: real (non-pad) elements per window, separable over axes.
  const perAxis = outSp.map((O, a) =>
    Array.from({ length: O }, (_, o) => {
      let c = 0;
      for (let i = 0; i < kernel[a]!; i++) {
        const h = o * w.strides[a]! - w.pads[a]! + i * w.dilations[a]!;
        if (h >= 0 && h < inSp[a]!) c++;
      }
      return c;
    }),
  );
  const inv = new Float32Array(product(outSp));
  for (let idx = 0; idx < inv.length; idx++) {
    let rem = idx;
    let c = 1;
    for (let a = r - 1; a >= 0; a--) {
      c *= perAxis[a]![rem % outSp[a]!]!;
      rem = Math.floor(rem / outSp[a]!);
    }
    inv[idx] = c > 0 ? 1 / c : 0;
  }
  const ones = b.op('ConstantOfShape', [b.constInt64([1, 1, ...inSp], [r + 2], 'shape')], { value: floatTensor('value', [1], [1]) }, 'Ones');
  const attrs: Record<string, import('../../ir/attrs.js').AttrValue> = {};
  for (const [k, v] of Object.entries(node.attrs)) attrs[k] = v;
  const pooledOnes = b.op('AveragePool', [ones], attrs);
  const scale = b.op('Mul', [pooledOnes, b.initializer(floatTensor(b.unique('inv_count'), [1, 1, ...outSp], inv))]);
  const N = xs[0]!;
  const C = xs[1]!;
  const dys = reshape(b, b.op('Mul', [dy, scale]), [N * C, 1, ...outSp]);
  const kernelOnes = b.initializer(floatTensor(b.unique('ones_kernel'), [1, 1, ...kernel], new Float32Array(product(kernel)).fill(1)));
  const tp = transposePads(w, inSp, outSp);
  const dx = b.op('ConvTranspose', [dys, kernelOnes], {
    strides: w.strides,
    dilations: w.dilations,
    pads: tp.pads,
    output_padding: tp.outputPadding.some((p) => p !== 0) ? tp.outputPadding : undefined,
    kernel_shape: kernel,
  });
  res[0] = reshape(b, dx, xs);
  return res;
};
