/**
 * Gradient of Conv (2-D, NCHW): any stride, explicit/asymmetric pads and
 * auto_pad, dilation, group (incl. depthwise and depth multipliers), optional bias.
 * 1-D/3-D convolutions are rejected with a clear error.
 *
 *  - dX (only when ctx.needsGrad(0); a block's input never needs it):
 *    stride 1: Conv of dY with the flipped, group-transposed kernel ("full"
 *    correlation), as fast as the forward pass. Strided: ConvTranspose with
 *    explicit pads + output_padding (default; formulation stridedConvInput 'zero-insert'
 *    instead builds dY with zeros inserted — Concat + DepthToSpace — and
 *    reuses the stride-1 path; measured no faster, kept as an option).
 *    The formulation of each part is chosen per `buildGradients` call (ctx.formulations).
 *  - dW, ordinary/grouped conv: im2col built from X transposed to [C,N,H,W]
 *    (Pad, k² strided Slices) against dY as [M, N·OH·OW]:
 *      'auto' (default): 'conv-dy' (below) for ≤ 16 output channels (the aux heads), else
 *      one Gemm(transB) over the concatenated [C·k², N·OH·OW]
 *      matrix while it stays ≤ 64 MiB, otherwise one Gemm per tap (no k²-sized
 *      buffer; each tap dies after its Gemm). 'batched' (per-tap batched MatMul
 *      over N without transposing X) is kept as a measured alternative.
 *    Grouped (non-depthwise): one batched MatMul over groups. With ≤ 4 input channels (stems),
 *    'auto' uses 'conv' instead: X as [C, N, Hp, Wp] correlated with dY as an [M, N, OH, OW] kernel.
 *  - dW, depthwise (group = C_in, multiplier 1): formulation depthwiseWeight, default
 *    'grouped-conv' = Conv over X reshaped [1, N·C, Hp, Wp] with dY as the
 *    kernel (group N·C, dilation = stride, stride = dilation), Slice to k×k,
 *    ReduceSum over N — the fastest of the four measured (see src/bench/autodiff.ts).
 *  - dB: ReduceSum of dY over N, H, W.
 */
import type { GraphBuilder } from '../../ir/builder.js';
import { attrInt, attrInts } from '../../ir/attrs.js';
import { floatTensor } from '../../ir/tensor.js';
import { padZeros, reduce, reshape, slice, transpose, unsqueeze } from '../helpers.js';
import type { DepthwiseWeightForm, GradContext, GradRule } from '../types.js';
import { resolveWindow, transposePads, type Window2d } from './_window.js';

/**
 * Depthwise weight-gradient formulations:
 *  - 'im2col-mul': per tap, strided Slice of padded X (laid out [C,N,H,W]) × dY
 *    ([C,N,OH,OW]), then ReduceSum over N,OH,OW.
 *  - 'grouped-conv': Conv over X reshaped [1, N·C, Hp, Wp] with dY as kernel
 *    (group N·C, dilation = stride, stride = dilation), then ReduceSum over N.
 *  - 'grouped-conv-c': Conv over X transposed to [1, C·N, Hp, Wp] with dY
 *    transposed as kernel [C, N, OH, OW] (group C): the N-sum happens inside the conv.
 *  - 'im2col-matmul': im2col as for ordinary convs, then a batched MatMul per channel.
 *  - 'row-matmul': k row-slices of padded X (not k²), one batched MatMul per
 *    (n, c) image: Z = dYᵀ[OW, OH] · rows[OH, k·Wp], whose strided diagonals
 *    (one constant-index Gather) summed over OW and N are dW.
 */
export const DEPTHWISE_WEIGHT_FORMS: readonly DepthwiseWeightForm[] = ['im2col-mul', 'grouped-conv', 'grouped-conv-c', 'im2col-matmul', 'row-matmul'];

/*
 * Ordinary-conv weight gradient (formulation convWeight): 'per-tap' (one Gemm per kernel tap),
 * 'concat' (one Gemm over the concatenated im2col matrix), 'batched', 'conv' (X with N as
 * channels correlated with dY as the kernel), 'conv-dy' (the transpose: dY with N as channels
 * correlated with X as the kernel; stride and dilation 1, else as 'conv'), or 'auto'.
 */
/** 'auto' switches to per-tap Gemms when the concatenated im2col matrix would exceed this many bytes. */
const IM2COL_CONCAT_MAX_BYTES = 64 << 20;
/**
 * 'auto' computes dW as a convolution (X with N as channels, dY as the kernel) when the input
 * has this few channels: im2col then feeds Gemms with only C·k² ≤ a few dozen rows, which run
 * far below peak. Measured (1 thread, median of 7): ResNet18's 7×7/2 stem on 3 channels at
 * batch 32, 1,110–1,160 ms → 370–440 ms; CNNB's 3→32 3×3 conv at batch 128, 49–72 → 40–62 ms.
 * With 16 or more channels the im2col Gemm wins (ResNet layer1 3×3: 200 vs 340 ms).
 */
const CONV_FORM_MAX_CHANNELS = 4;
/**
 * 'auto' uses 'conv-dy' for convs with this few output channels (the SFF aux heads: J ≤ 10
 * classes, k = 5): the per-tap im2col then copies X k² times to feed Gemms only M rows tall.
 * Measured at batch 32 (ResNet18, MobileNetV3-small) and 128 (CNNB), 2 threads, median of 5,
 * under heavy contention (load average ~30): dW of the 10-output 5×5 head in ms, auto(im2col) →
 * conv-dy: ResNet18 layer1 1,638 → 685, layer2 1,440 → 329; MobileNetV3 112² 1,109 → 646,
 * 56² 499 → 181; CNNB block0 460 → 196, block2 560 → 156 ('conv' was second everywhere).
 */
const CONV_DY_MAX_OUTPUTS = 16;

interface ConvGeom {
  N: number;
  C: number;
  M: number;
  g: number;
  inSp: number[];
  outSp: number[];
  w: Window2d;
}

function geometry(ctx: GradContext): ConvGeom {
  const { node } = ctx;
  const xs = ctx.shape(node.inputs[0]!);
  const ws = ctx.shape(node.inputs[1]!);
  const ys = ctx.shape(node.outputs[0]!);
  if (xs.length !== 4) throw new Error(`Conv gradient: node '${node.name}' is ${xs.length - 2}-D; only 2-D convolutions are supported`);
  const kernel = attrInts(node, 'kernel_shape', ws.slice(2));
  const inSp = xs.slice(2);
  const outSp = ys.slice(2);
  return { N: xs[0]!, C: xs[1]!, M: ws[0]!, g: attrInt(node, 'group', 1), inSp, outSp, w: resolveWindow(node, kernel, inSp, outSp) };
}

/** Full correlation of `dy` (stride-1 geometry) with the flipped, group-transposed kernel. */
function stride1InputGrad(ctx: GradContext, geo: ConvGeom, dy: string, begin: number[], end: number[]): string {
  const { b } = ctx;
  const W = ctx.node.inputs[1]!;
  const { w, g, C, M } = geo;
  const [kh, kw] = w.kernel as [number, number];
  // W [M, C/g, kh, kw] → W' [C, M/g, kh, kw], flipped spatially.
  let wt: string;
  if (g === 1) wt = transpose(b, W, [1, 0, 2, 3]);
  else if (M === g && C === g) wt = W; // depthwise multiplier 1: [C,1,kh,kw] already
  else wt = reshape(b, transpose(b, reshape(b, W, [g, M / g, C / g, kh, kw]), [0, 2, 1, 3, 4]), [C, M / g, kh, kw]);
  const flipped = kh === 1 && kw === 1 ? wt : slice(b, wt, [-1, -1], [-(2 ** 62), -(2 ** 62)], [2, 3], [-1, -1], ctx.opset);
  return b.op('Conv', [dy, flipped], {
    group: g,
    dilations: w.dilations,
    pads: [begin[0]!, begin[1]!, end[0]!, end[1]!],
    strides: [1, 1],
    kernel_shape: [kh, kw],
  });
}

/**
 * dX. Strided (formulation stridedConvInput): 'convtranspose' (ConvTranspose with output_padding),
 * 'zero-insert' (dY with zeros inserted, then a stride-1 Conv), or 'auto' (zero-insert for
 * depthwise convs, where onnxruntime's grouped ConvTranspose is slow; ConvTranspose otherwise).
 * dX = full correlation of dY with the flipped kernel (stride 1) or ConvTranspose. */
function inputGrad(ctx: GradContext, geo: ConvGeom, dy: string): string {
  const { b } = ctx;
  const W = ctx.node.inputs[1]!;
  const { w, g, C, M, inSp, outSp } = geo;
  const [kh, kw] = w.kernel as [number, number];
  const stride1 = w.strides.every((s) => s === 1);
  const fullPads = [0, 1].map((i) => (w.kernel[i]! - 1) * w.dilations[i]! - w.pads[i]!);
  const endPads = [0, 1].map((i) => inSp[i]! - outSp[i]! + (w.kernel[i]! - 1) * w.dilations[i]! - fullPads[i]!);
  if (stride1 && fullPads.every((p) => p >= 0) && endPads.every((p) => p >= 0)) return stride1InputGrad(ctx, geo, dy, fullPads, endPads);
  const stridedForm = ctx.formulations.stridedConvInput;
  if (fullPads.every((p) => p >= 0) && (stridedForm === 'zero-insert' || (stridedForm === 'auto' && g === C && g > 1))) {
    // Zero-insertion: U = dY with s−1 zeros after every element, then the stride-1 rule.
    const [sh, sw] = w.strides as [number, number];
    const [OH, OW] = outSp as [number, number];
    let u: string;
    if (sh === sw) {
      // [dY, 0, …] along channels, then DepthToSpace (DCR) puts dY at each block's (0, 0).
      const z = b.op('ConstantOfShape', [b.constInt64([geo.N, M * (sh * sw - 1), OH, OW], [4], 'shape')], { value: floatTensor('value', [1], [0]) }, 'Zeros');
      u = b.op('DepthToSpace', [b.op('Concat', [dy, z], { axis: 1 })], { blocksize: sh, mode: 'DCR' });
    } else {
      u = reshape(b, dy, [geo.N, M, OH, 1, OW, 1]);
      u = padZeros(b, u, [0, 0, 0, 0, 0, 0], [0, 0, 0, sh - 1, 0, sw - 1], ctx.opset);
      u = reshape(b, u, [geo.N, M, OH * sh, OW * sw]);
    }
    let uSp = [OH * sh, OW * sw];
    let ends = [0, 1].map((i) => inSp[i]! - uSp[i]! + (w.kernel[i]! - 1) * w.dilations[i]! - fullPads[i]!);
    if (ends.some((e) => e < 0)) {
      uSp = [(OH - 1) * sh + 1, (OW - 1) * sw + 1];
      u = slice(b, u, [0, 0], uSp, [2, 3], undefined, ctx.opset);
      ends = [0, 1].map((i) => inSp[i]! - uSp[i]! + (w.kernel[i]! - 1) * w.dilations[i]! - fullPads[i]!);
    }
    if (ends.every((e) => e >= 0)) return stride1InputGrad(ctx, geo, u, fullPads, ends);
  }
  const tp = transposePads(w, inSp, outSp);
  return b.op('ConvTranspose', [dy, W], {
    group: g,
    dilations: w.dilations,
    strides: w.strides,
    pads: tp.pads,
    output_padding: tp.outputPadding.some((p) => p !== 0) ? tp.outputPadding : undefined,
    kernel_shape: [kh, kw],
  });
}

/**
 * The k² strided windows of padded `xp` ([A, B, Hp, Wp]), each [A, B, OH, OW];
 * tap order (i, j) row-major, matching the weight layout.
 */
function taps(b: GraphBuilder, xp: string, geo: ConvGeom, opset: number): string[] {
  const { w, outSp } = geo;
  const out: string[] = [];
  for (let i = 0; i < w.kernel[0]!; i++)
    for (let j = 0; j < w.kernel[1]!; j++) {
      const s0 = [i * w.dilations[0]!, j * w.dilations[1]!];
      const e0 = [s0[0]! + (outSp[0]! - 1) * w.strides[0]! + 1, s0[1]! + (outSp[1]! - 1) * w.strides[1]! + 1];
      out.push(slice(b, xp, s0, e0, [2, 3], w.strides, opset));
    }
  return out;
}

/** `x` ([A, B, H, W]) zero-padded by the window's spatial pads. */
function padSpatial(ctx: GradContext, x: string, w: Window2d): string {
  return padZeros(ctx.b, x, [0, 0, w.pads[0]!, w.pads[1]!], [0, 0, w.pads[2]!, w.pads[3]!], ctx.opset);
}

/** X as [C, N, Hp, Wp] (transposed then zero-padded), trimmed to the rows the windows read. */
function paddedCN(ctx: GradContext, geo: ConvGeom): string {
  const { b } = ctx;
  const xt = geo.N === 1 ? reshape(b, ctx.node.inputs[0]!, [geo.C, 1, ...geo.inSp]) : transpose(b, ctx.node.inputs[0]!, [1, 0, 2, 3]);
  return padSpatial(ctx, xt, geo.w);
}

/** dY as [M, N, OH, OW]. */
function dyMN(b: GraphBuilder, dy: string, geo: ConvGeom): string {
  return geo.N === 1 ? reshape(b, dy, [geo.M, 1, ...geo.outSp]) : transpose(b, dy, [1, 0, 2, 3]);
}

/** im2col weight gradient for ordinary and grouped convolutions. */
function weightGradIm2col(ctx: GradContext, geo: ConvGeom, dy: string): string {
  const { b } = ctx;
  const { N, C, M, g, w, outSp } = geo;
  const [kh, kw] = w.kernel as [number, number];
  const L = N * outSp[0]! * outSp[1]!;
  const k2 = kh * kw;
  const im2colMode = ctx.formulations.convWeight;
  if (g === 1 && im2colMode === 'batched') {
    // Taps sliced from X in its own [N, C, H, W] layout (no transpose of X); per tap a batched
    // MatMul over N: [N, C, OH·OW] · [N, OH·OW, M] → [N, C, M], summed over N at the end.
    const l = outSp[0]! * outSp[1]!;
    const xpn = padSpatial(ctx, ctx.node.inputs[0]!, w);
    const dyt = transpose(b, reshape(b, dy, [N, M, l]), [0, 2, 1]);
    const parts = taps(b, xpn, geo, ctx.opset).map((t) => unsqueeze(b, b.op('MatMul', [reshape(b, t, [N, C, l]), dyt]), [3], ctx.opset));
    const cat = parts.length === 1 ? parts[0]! : b.op('Concat', parts, { axis: 3 }); // [N, C, M, k²]
    const sum = reduce(b, 'ReduceSum', cat, [0], false, ctx.opset); // [C, M, k²]
    return reshape(b, transpose(b, sum, [1, 0, 2]), [M, C, kh, kw]);
  }
  // 'conv-dy': dY (as [M, N, OH, OW]) correlated with X (as a [C, N, H, W] kernel): batch M, N channels,
  // C outputs of k×k — the spatially flipped dW, with im2col over M·N small dY planes instead of
  // C·N planes of X. X's zero padding moves onto dY as the Conv's own pads (k−1−pad each side; a
  // Pad op feeding a Conv's kernel input trips onnxruntime's Pad fusion), so it needs pads < k.
  const dyPads = [kh - 1 - w.pads[0]!, kw - 1 - w.pads[1]!, kh - 1 - w.pads[2]!, kw - 1 - w.pads[3]!];
  const unitWindow = w.strides.every((v) => v === 1) && w.dilations.every((v) => v === 1) && dyPads.every((p) => p >= 0);
  const convDy = im2colMode === 'conv-dy' || (im2colMode === 'auto' && M <= CONV_DY_MAX_OUTPUTS);
  if (g === 1 && convDy && unitWindow && k2 > 1) {
    const xKernel = N === 1 ? reshape(b, ctx.node.inputs[0]!, [C, 1, ...geo.inSp]) : transpose(b, ctx.node.inputs[0]!, [1, 0, 2, 3]);
    const flipped = b.op('Conv', [dyMN(b, dy, geo), xKernel], { kernel_shape: geo.inSp, pads: dyPads }); // [M, C, kh, kw], reversed taps
    return slice(b, flipped, [-1, -1], [-(2 ** 62), -(2 ** 62)], [2, 3], [-1, -1], ctx.opset);
  }
  if (g === 1 && (im2colMode === 'conv' || im2colMode === 'conv-dy' || (im2colMode === 'auto' && C <= CONV_FORM_MAX_CHANNELS && k2 > 1))) {
    // X as [C, N, Hp, Wp] correlated with dY as an [M, N, OH, OW] kernel: [C, M, kh, kw].
    const r = weightGradAsConv(ctx, geo, paddedCN(ctx, geo), dyMN(b, dy, geo), 1);
    return transpose(b, r, [1, 0, 2, 3]);
  }
  const xp = paddedCN(ctx, geo);
  // dY → [M, L]
  const dyT = N === 1 ? reshape(b, dy, [M, L]) : reshape(b, transpose(b, dy, [1, 0, 2, 3]), [M, L]);
  const perTap = im2colMode === 'per-tap' || (im2colMode === 'auto' && C * k2 * L * 4 > IM2COL_CONCAT_MAX_BYTES);
  if (g === 1 && k2 > 1 && perTap) {
    // One Gemm per tap, dW[:, :, i, j] = dY2 · tapᵀ ([M, C]); no k²-sized concat is materialised
    // and each tap buffer dies right after its Gemm.
    const parts = taps(b, xp, geo, ctx.opset).map((t) => unsqueeze(b, b.op('Gemm', [dyT, reshape(b, t, [C, L])], { transB: 1 }), [2], ctx.opset));
    return reshape(b, b.op('Concat', parts, { axis: 2 }), [M, C, kh, kw]);
  }
  let cols: string; // [C·k², N·OH·OW], row (c, i, j)
  if (k2 === 1) {
    const t = taps(b, xp, geo, ctx.opset)[0]!;
    cols = reshape(b, t, [C, L]);
  } else {
    const ts = taps(b, xp, geo, ctx.opset).map((t) => reshape(b, t, [C, 1, L]));
    cols = reshape(b, b.op('Concat', ts, { axis: 1 }), [C * k2, L]);
  }
  if (g === 1) {
    // dW = dY2 [M, L] · cols^T → Gemm transB.
    const dw = b.op('Gemm', [dyT, cols], { transB: 1 });
    return reshape(b, dw, [M, C, kh, kw]);
  }
  const dyG = reshape(b, dyT, [g, M / g, L]);
  const colsG = reshape(b, cols, [g, (C / g) * k2, L]);
  const colsGT = transpose(b, colsG, [0, 2, 1]);
  const dw = b.op('MatMul', [dyG, colsGT]); // [g, M/g, C/g·k²]
  return reshape(b, dw, [M, C / g, kh, kw]);
}

/** Weight gradient for depthwise convs (group = C_in, M = C_in · multiplier). */
function depthwiseWeightGrad(ctx: GradContext, geo: ConvGeom, dy: string, mode: DepthwiseWeightForm): string {
  const { b } = ctx;
  const { N, C, M, w, inSp, outSp } = geo;
  const [kh, kw] = w.kernel as [number, number];
  const mult = M / C;
  if (mode === 'im2col-matmul' || mult !== 1) return weightGradIm2col(ctx, geo, dy);
  if (mode === 'row-matmul') {
    const [sh, sw] = w.strides as [number, number];
    const [dh, dw] = w.dilations as [number, number];
    const [OH, OW] = outSp as [number, number];
    const Hp = inSp[0]! + w.pads[0]! + w.pads[2]!;
    const Wp = inSp[1]! + w.pads[1]! + w.pads[3]!;
    const xp = reshape(b, padSpatial(ctx, ctx.node.inputs[0]!, w), [N * C, Hp, Wp]);
    const rows = Array.from({ length: kh }, (_, i) => unsqueeze(b, slice(b, xp, [i * dh], [i * dh + (OH - 1) * sh + 1], [1], [sh], ctx.opset), [2], ctx.opset));
    const xr = reshape(b, rows.length === 1 ? rows[0]! : b.op('Concat', rows, { axis: 2 }), [N * C, OH, kh * Wp]);
    const dyt = transpose(b, reshape(b, dy, [N * C, OH, OW]), [0, 2, 1]); // [N·C, OW, OH]
    const z = reshape(b, b.op('MatMul', [dyt, xr]), [N * C, OW * kh * Wp]); // Z[ow, i, w]
    const idx: number[] = [];
    for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) for (let o = 0; o < OW; o++) idx.push(o * kh * Wp + i * Wp + o * sw + j * dw);
    const gathered = b.op('Gather', [z, b.constInt64(idx, [idx.length], 'diag')], { axis: 1 }); // [N·C, k²·OW]
    const sum = reduce(b, 'ReduceSum', reshape(b, gathered, [N, C * kh * kw, OW]), [0, 2], false, ctx.opset);
    return reshape(b, sum, [M, 1, kh, kw]);
  }
  if (mode === 'im2col-mul') {
    const xp = paddedCN(ctx, geo); // [C, N, Hp, Wp]
    const dyT = dyMN(b, dy, geo); // [C, N, OH, OW]
    const sums = taps(b, xp, geo, ctx.opset).map((t) => reduce(b, 'ReduceSum', reshape(b, b.op('Mul', [t, dyT]), [C, N * outSp[0]! * outSp[1]!]), [1], true, ctx.opset));
    const dw = sums.length === 1 ? sums[0]! : b.op('Concat', sums, { axis: 1 }); // [C, k²]
    return reshape(b, dw, [M, 1, kh, kw]);
  }
  if (mode === 'grouped-conv') {
    const xr = padSpatial(ctx, reshape(b, ctx.node.inputs[0]!, [1, N * C, ...inSp]), w);
    const r = weightGradAsConv(ctx, geo, xr, reshape(b, dy, [N * C, 1, ...outSp]), N * C); // [1, N·C, kh, kw]
    const s = reduce(b, 'ReduceSum', reshape(b, r, [N, C * kh * kw]), [0], false, ctx.opset);
    return reshape(b, s, [M, 1, kh, kw]);
  }
  // grouped-conv-c
  const xp = paddedCN(ctx, geo); // [C, N, Hp, Wp]
  const xr = reshape(b, xp, [1, C * N, inSp[0]! + w.pads[0]! + w.pads[2]!, inSp[1]! + w.pads[1]! + w.pads[3]!]);
  const r = weightGradAsConv(ctx, geo, xr, dyMN(b, dy, geo), C); // [1, C, kh, kw]
  return reshape(b, r, [M, 1, kh, kw]);
}

/**
 * The weight gradient as a convolution: padded X (channels = what is summed over) correlated
 * with dY used as the kernel — the roles of stride and dilation swap — then trimmed to the
 * k×k window (the correlation can have a few more rows when the forward windows left some out).
 */
function weightGradAsConv(ctx: GradContext, geo: ConvGeom, xPadded: string, dyKernel: string, group: number): string {
  const { b } = ctx;
  const { w, inSp, outSp } = geo;
  const [kh, kw] = w.kernel as [number, number];
  const Hp = inSp[0]! + w.pads[0]! + w.pads[2]!;
  const Wp = inSp[1]! + w.pads[1]! + w.pads[3]!;
  const oh = Math.floor((Hp - ((outSp[0]! - 1) * w.strides[0]! + 1)) / w.dilations[0]!) + 1;
  const ow = Math.floor((Wp - ((outSp[1]! - 1) * w.strides[1]! + 1)) / w.dilations[1]!) + 1;
  const r = b.op('Conv', [xPadded, dyKernel], { dilations: w.strides, strides: w.dilations, kernel_shape: outSp, group });
  return oh === kh && ow === kw ? r : slice(b, r, [0, 0], [kh, kw], [2, 3], undefined, ctx.opset);
}

export const Conv: GradRule = (ctx) => {
  const dy = ctx.gradOutput(0);
  const { node, b } = ctx;
  if (!dy) return node.inputs.map(() => undefined);
  const geo = geometry(ctx);
  const res: (string | undefined)[] = node.inputs.map(() => undefined);
  if (ctx.needsGrad(0)) res[0] = inputGrad(ctx, geo, dy);
  if (node.inputs[1] && ctx.needsGrad(1)) {
    const depthwise = geo.g === geo.C && geo.g > 1;
    res[1] = depthwise ? depthwiseWeightGrad(ctx, geo, dy, ctx.formulations.depthwiseWeight) : weightGradIm2col(ctx, geo, dy);
  }
  if (node.inputs[2] && ctx.needsGrad(2)) res[2] = reduce(b, 'ReduceSum', dy, [0, 2, 3], false, ctx.opset);
  return res;
};
