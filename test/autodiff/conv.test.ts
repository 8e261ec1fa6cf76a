/**
 * Conv gradient rule against central differences (harness checkGradients).
 * Conv is bilinear in (x, w), so central differences are exact up to float32
 * rounding: eps 0.1, |analytic − numeric| ≤ 1e-3 + 1e-3·|numeric|.
 */
import { describe, expect, it } from 'vitest';
import type { AttrValue } from '../../src/ir/attrs.js';
import { DEPTHWISE_WEIGHT_FORMS } from '../../src/autodiff/gradients/Conv.js';
import type { GradFormulations } from '../../src/autodiff/types.js';
import { checkGradients } from './harness.js';

const tol = { eps: 0.1, rtol: 1e-3, atol: 1e-3 };

interface ConvCase {
  x: number[];
  w: number[];
  bias?: boolean;
  attrs: Record<string, AttrValue>;
  /** Whether x is differentiated too (the block input is not; inner layers are). */
  dx?: boolean;
}

async function checkConv(c: ConvCase, formulations?: Partial<GradFormulations>) {
  const inputs: Record<string, { dims: number[]; trainable: boolean }> = {
    x: { dims: c.x, trainable: c.dx !== false },
    w: { dims: c.w, trainable: true },
  };
  if (c.bias) inputs.bias = { dims: [c.w[0]!], trainable: true };
  const r = await checkGradients({
    ...tol,
    inputs,
    formulations,
    build: (b, i) => b.op('Conv', c.bias ? [i.x!, i.w!, i.bias!] : [i.x!, i.w!], c.attrs),
  });
  expect(r.analytic.w!.length).toBe(c.w.reduce((p, v) => p * v, 1));
  return r;
}

const cases: [string, ConvCase][] = [
  ['3x3 stride 1 pad 1 with bias', { x: [2, 3, 7, 7], w: [4, 3, 3, 3], bias: true, attrs: { pads: [1, 1, 1, 1] } }],
  ['3x3 stride 1, no pad, no bias', { x: [2, 3, 6, 6], w: [4, 3, 3, 3], attrs: {} }],
  ['3x3 stride 2 pad 1', { x: [2, 3, 8, 8], w: [4, 3, 3, 3], attrs: { pads: [1, 1, 1, 1], strides: [2, 2] } }],
  ['3x3 stride 2 pad 1, odd input (no output_padding slack)', { x: [2, 3, 9, 9], w: [4, 3, 3, 3], attrs: { pads: [1, 1, 1, 1], strides: [2, 2] } }],
  ['asymmetric pads [0,0,1,1] stride 2 (TFLite style)', { x: [2, 3, 8, 8], w: [4, 3, 3, 3], attrs: { pads: [0, 0, 1, 1], strides: [2, 2] } }],
  ['asymmetric pads [1,0,2,1] stride 1', { x: [2, 2, 6, 7], w: [3, 2, 3, 3], attrs: { pads: [1, 0, 2, 1] } }],
  ['auto_pad SAME_UPPER stride 2', { x: [2, 3, 7, 7], w: [4, 3, 3, 3], attrs: { auto_pad: 'SAME_UPPER', strides: [2, 2] } }],
  ['auto_pad SAME_LOWER stride 1, 4x4 kernel', { x: [1, 2, 6, 6], w: [3, 2, 4, 4], attrs: { auto_pad: 'SAME_LOWER' } }],
  ['auto_pad VALID stride 2', { x: [1, 2, 7, 7], w: [3, 2, 3, 3], attrs: { auto_pad: 'VALID', strides: [2, 2] } }],
  ['dilation 2 pad 2', { x: [2, 3, 9, 9], w: [4, 3, 3, 3], attrs: { pads: [2, 2, 2, 2], dilations: [2, 2] } }],
  ['dilation 2 stride 2', { x: [2, 2, 9, 9], w: [3, 2, 3, 3], attrs: { pads: [1, 1, 1, 1], dilations: [2, 2], strides: [2, 2] } }],
  ['group 2 with bias', { x: [2, 4, 7, 7], w: [6, 2, 3, 3], bias: true, attrs: { pads: [1, 1, 1, 1], group: 2 } }],
  ['group 2 stride 2', { x: [2, 4, 8, 8], w: [6, 2, 3, 3], attrs: { pads: [1, 1, 1, 1], group: 2, strides: [2, 2] } }],
  ['depthwise 3x3 stride 1', { x: [2, 4, 7, 7], w: [4, 1, 3, 3], attrs: { pads: [1, 1, 1, 1], group: 4 } }],
  ['depthwise 5x5 stride 2 with bias', { x: [2, 4, 9, 9], w: [4, 1, 5, 5], bias: true, attrs: { pads: [2, 2, 2, 2], group: 4, strides: [2, 2] } }],
  ['depthwise 3x3 stride 2 asymmetric pads [0,0,1,1]', { x: [2, 3, 8, 8], w: [3, 1, 3, 3], attrs: { pads: [0, 0, 1, 1], group: 3, strides: [2, 2] } }],
  ['depthwise multiplier 2', { x: [2, 3, 6, 6], w: [6, 1, 3, 3], attrs: { pads: [1, 1, 1, 1], group: 3 } }],
  ['1x1 stride 1 with bias', { x: [2, 5, 4, 4], w: [3, 5, 1, 1], bias: true, attrs: {} }],
  ['1x1 stride 2 (downsample)', { x: [2, 4, 7, 7], w: [6, 4, 1, 1], attrs: { strides: [2, 2] } }],
  ['1x1 on 1x1 spatial (SE fc)', { x: [3, 6, 1, 1], w: [2, 6, 1, 1], bias: true, attrs: {} }],
  ['batch 1, non-square kernel and strides', { x: [1, 2, 7, 8], w: [3, 2, 3, 2], attrs: { pads: [1, 0, 1, 1], strides: [2, 3] } }],
  ['aux-head shape: 5x5 pad 2, fewer outputs than inputs', { x: [2, 12, 6, 6], w: [2, 12, 5, 5], bias: true, attrs: { pads: [2, 2, 2, 2] } }],
  ['aux-head shape, non-square kernel, asymmetric pads', { x: [2, 12, 5, 7], w: [3, 12, 3, 5], attrs: { pads: [1, 2, 0, 1] } }],
  ['weight gradient only (block input)', { x: [2, 3, 6, 6], w: [4, 3, 3, 3], dx: false, attrs: { pads: [1, 1, 1, 1], strides: [2, 2] } }],
];

describe('Conv gradient (central differences)', () => {
  for (const [name, c] of cases) it(name, async () => void (await checkConv(c)));
});

describe('Conv gradient: alternative formulations', () => {
  for (const depthwiseWeight of DEPTHWISE_WEIGHT_FORMS)
    for (const s of [1, 2])
      it(`depthwise weight gradient '${depthwiseWeight}', stride ${s}`, async () => {
        await checkConv({ x: [2, 3, 8, 8], w: [3, 1, 5, 5], attrs: { pads: [2, 2, 2, 2], group: 3, strides: [s, s] } }, { depthwiseWeight });
        await checkConv({ x: [2, 3, 9, 8], w: [3, 1, 3, 3], dx: false, attrs: { pads: [2, 1, 1, 2], group: 3, strides: [s, 1], dilations: [2, 2] } }, { depthwiseWeight });
      });
  for (const convWeight of ['per-tap', 'concat', 'batched'] as const)
    it(`im2col '${convWeight}'`, async () => {
      await checkConv({ x: [2, 3, 8, 8], w: [4, 3, 3, 3], attrs: { pads: [0, 0, 1, 1], strides: [2, 2] } }, { convWeight });
    });
  // 'auto' picks the conv form for ≤ 4 input channels and im2col above: run every ungrouped
  // geometry through both, whatever the channel count.
  for (const convWeight of ['conv', 'conv-dy', 'concat'] as const)
    for (const [name, c] of cases.filter(([, c]) => c.attrs.group === undefined))
      it(`weight gradient '${convWeight}': ${name}`, async () => {
        await checkConv({ ...c, dx: false }, { convWeight });
      });
  for (const stridedConvInput of ['zero-insert', 'convtranspose', 'auto'] as const)
    for (const [name, c] of cases.filter(([, c]) => c.attrs.strides !== undefined))
      it(`strided dX '${stridedConvInput}': ${name}`, async () => {
        await checkConv(c, { stridedConvInput });
      });
  it('the formulation reaches the rule through the gradient context (no module state)', async () => {
    const c: ConvCase = { x: [2, 3, 8, 8], w: [3, 1, 3, 3], attrs: { pads: [1, 1, 1, 1], group: 3 } };
    const convOps = (r: Awaited<ReturnType<typeof checkConv>>) => r.graph.nodes.filter((n) => n.name.startsWith('/grad')).map((n) => n.opType);
    const im2col = convOps(await checkConv(c, { depthwiseWeight: 'im2col-mul' }));
    const grouped = convOps(await checkConv(c, { depthwiseWeight: 'grouped-conv' }));
    const again = convOps(await checkConv(c, { depthwiseWeight: 'im2col-mul' }));
    // im2col-mul: k² strided Slices of X; grouped-conv: one Conv for dW (plus dX's Conv) and no Slice per tap.
    expect(im2col.filter((o) => o === 'Slice').length).toBeGreaterThanOrEqual(9);
    expect(grouped.filter((o) => o === 'Conv').length).toBe(2);
    expect(grouped.filter((o) => o === 'Slice').length).toBeLessThan(9);
    expect(again).toEqual(im2col);
  });
});
