import { describe, it } from 'vitest';
import { checkGradients } from './harness.js';

// eps 1e-3; |analytic - numeric| <= 1e-3 + 1e-2|numeric|.
const tol = { eps: 1e-3, rtol: 1e-2, atol: 1e-3 };
const x = { dims: [2, 3, 4], trainable: true };

describe('reductions (central differences)', () => {
  for (const op of ['ReduceSum', 'ReduceMean', 'ReduceLogSumExp']) {
    // Axes as input from opset 13 (ReduceSum) / 18 (the others), attribute before.
    const inputSince = op === 'ReduceSum' ? 13 : 18;
    const variants: { label: string; axes?: number[]; keepdims?: number; noop?: number }[] = [
      { label: 'axes [1], keepdims', axes: [1] },
      { label: 'axes [-1, 0], no keepdims', axes: [-1, 0], keepdims: 0 },
      { label: 'all axes (none given)', keepdims: 0 },
      { label: 'empty axes with noop_with_empty_axes (identity)', noop: 1 },
    ];
    for (const opset of [inputSince - 1, inputSince])
      for (const v of variants) {
        if (v.noop && opset < inputSince) continue;
        it(`${op} opset ${opset}: ${v.label}`, async () => {
          await checkGradients({
            ...tol,
            opset,
            inputs: { x },
            build: (b, i) => {
              const attrs: Record<string, number | number[]> = {};
              if (v.keepdims !== undefined) attrs['keepdims'] = v.keepdims;
              if (v.noop) attrs['noop_with_empty_axes'] = 1;
              if (opset >= inputSince) return b.op(op, v.axes ? [i.x!, b.constInt64(v.axes)] : [i.x!], attrs);
              if (v.axes) attrs['axes'] = v.axes;
              return b.op(op, [i.x!], attrs);
            },
          });
        });
      }
  }

  for (const op of ['Softmax', 'LogSoftmax'])
    for (const [opset, axis] of [[17, undefined], [17, 1], [17, -3], [11, 1], [11, undefined]] as [number, number | undefined][])
      it(`${op} opset ${opset} axis ${axis ?? 'default'}`, async () => {
        await checkGradients({ ...tol, opset, inputs: { x }, build: (b, i) => b.op(op, [i.x!], axis === undefined ? {} : { axis }) });
      });
});
