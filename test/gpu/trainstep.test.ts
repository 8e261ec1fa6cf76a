/**
 * One SFF train step (forward, loss, gradients, one AdamW update, BN running statistics) and the
 * eval graph, on the CPU EP (graph built for 'cpu') and on the WebGPU EP (graph built for
 * 'webgpu': BN training mode, LogSoftmax, Sum and MaxPool's gradient rewritten), from the same
 * weights and batch. They must agree to float32 rounding, for a CNNB block, a ResNet basic-block
 * stage and a MobileNetV3 block (inverted residual with squeeze-excite and hard-swish).
 * Small images and batches: SwiftShader is a CPU emulating a GPU.
 */
import { describe, expect, it } from 'vitest';
import ort from 'onnxruntime-node';
import { prepareModel } from '../../src/train/model.js';
import { planStages } from '../../src/train/stages.js';
import { benchRunConfig } from '../../src/bench/throughput.js';
import { blockLayout, buildEvalGraph, buildTrainStep } from '../../src/train/artifacts.js';
import { BlockRunner } from '../../src/train/runner.js';
import { createPlacedSession, createSession } from '../../src/runtime/session.js';
import { formatPlacement } from '../../src/runtime/providers.js';
import { ADAMW_DEFAULTS } from '../../src/optim/adamw.js';
import type { GraphTarget } from '../../src/autodiff/lowering.js';
import { warnWebgpuSkip, webgpuSkipReason } from './helpers.js';

warnWebgpuSkip('test/gpu/trainstep.test.ts');

const J = 10;
const LR = 1e-3;

/** max |a − b| over max |b| (the scale of the reference). */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let err = 0;
  let scale = 1e-12;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return err / scale;
}

function seeded(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

async function runOn(target: GraphTarget, model: string, imageSize: number, blockName: string, B: number) {
  const pm = await prepareModel(`builtin:${model}`, { imageSize });
  const stage = planStages(pm, benchRunConfig('sff', J, imageSize, B, true)).find((s) => s.block.name === blockName);
  if (!stage) throw new Error(`${model} has no block '${blockName}' (blocks: ${pm.blocks.map((b) => b.name).join(', ')})`);
  const { block, objective } = stage;
  const layout = blockLayout(block, objective.params);
  const init = layout.pack((name) => objective.params.find((p) => p.name === name)?.init ?? new Float32Array(block.constants.get(name)!.raw.slice().buffer));
  const train = await buildTrainStep({ block, objective, classes: J, batchSize: B, adamw: { ...ADAMW_DEFAULTS }, target }, layout);
  const evalModel = buildEvalGraph(block, objective, layout, J, target);
  const rt = { device: target === 'cpu' ? 'cpu' : 'webgpu', threads: 1 };
  let sessions;
  if (target === 'cpu') sessions = { train: await createSession(train, rt), eval: await createSession(evalModel, rt) };
  else {
    const placed = { train: await createPlacedSession(train, rt), eval: await createPlacedSession(evalModel, rt) };
    for (const p of [placed.train.placement!, placed.eval.placement!]) expect(p.fallback, formatPlacement(p)).toEqual([]);
    sessions = { train: placed.train.session, eval: placed.eval.session };
  }
  const state = new Map(block.state.map((s) => [s, { data: new Float32Array(block.constants.get(s)!.raw.slice().buffer), dims: block.constants.get(s)!.dims }]));
  const runner = new BlockRunner(block.name, layout, { params: init, state }, sessions, new Map(block.state.map((s) => [s, block.constants.get(s)!.dims])), LR);
  const n = B * block.inputShape.reduce((a, d) => a * d, 1);
  const x = new ort.Tensor('float32', seeded(n, 7), [B, ...block.inputShape]);
  const labels = new ort.Tensor('int64', BigInt64Array.from({ length: B }, (_, i) => BigInt((i * 3) % J)), [B]);
  // Eval first, on the shared initial weights: after the step each device evaluates its own update,
  // whose rounding-level gradients may flip AdamW's lr·sign(g) (compared apart below).
  const evaluated = await runner.evaluate(x);
  const evalOut = { next: Float32Array.from(evaluated.next.data as Float32Array), goodness: Float32Array.from(evaluated.goodness) };
  const step = await runner.trainStep(x, labels);
  const out = { loss: step.loss, goodness: Float32Array.from(step.goodness), next: Float32Array.from(step.next.data as Float32Array) };
  const after = runner.snapshot();
  const result = { init, out, after, eval: evalOut };
  await runner.release();
  return result;
}

/** float32 rounding, compounded through a block's forward and backward: relative to each output's scale. */
const TOL = 1e-3;

async function compare(model: string, imageSize: number, blockName: string, B: number): Promise<void> {
  const cpu = await runOn('cpu', model, imageSize, blockName, B);
  const gpu = await runOn('webgpu', model, imageSize, blockName, B);
  const errs: Record<string, number> = {
    loss: Math.abs(gpu.out.loss - cpu.out.loss) / Math.abs(cpu.out.loss),
    goodness: relErr(gpu.out.goodness, cpu.out.goodness),
    next: relErr(gpu.out.next, cpu.out.next),
    adamM: relErr(gpu.after.m, cpu.after.m),
    adamV: relErr(gpu.after.v, cpu.after.v),
    evalNext: relErr(gpu.eval.next, cpu.eval.next),
    evalGoodness: relErr(gpu.eval.goodness, cpu.eval.goodness),
  };
  for (const [k, v] of Object.entries(cpu.after.state)) errs[`state ${k}`] = relErr(gpu.after.state[k]!, v);
  // AdamW's first step moves each weight by about lr·sign(g): compare it where g is clearly
  // non-zero (|g| > 1e-4·max|g|); where g is at rounding level its sign is noise on either device.
  // (MobileNetV3's squeeze-excite leaves many small gradients at batch 2: half the weights at least.)
  const g = cpu.after.m; // m after one step = (1 − β1)·g
  const gMax = g.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
  let stepErr = 0;
  let compared = 0;
  for (let i = 0; i < g.length; i++) {
    if (Math.abs(g[i]!) <= 1e-4 * gMax) continue;
    compared++;
    stepErr = Math.max(stepErr, Math.abs(gpu.after.params[i]! - gpu.init[i]! - (cpu.after.params[i]! - cpu.init[i]!)) / LR);
  }
  errs.adamwStep = stepErr;
  expect(compared).toBeGreaterThan(0.5 * g.length);
  console.log(`${model} ${blockName}: CPU vs WebGPU relative errors ${JSON.stringify(errs)}; AdamW step compared on ${compared} of ${g.length} weights`);
  const bad = Object.entries(errs).filter(([, v]) => !(v <= TOL));
  expect(bad, `${model} ${blockName}: CPU vs WebGPU relative errors ${JSON.stringify(errs)}`).toEqual([]);
}

describe.skipIf(webgpuSkipReason !== undefined)('train step: CPU EP vs WebGPU EP', () => {
  it('CNNB block (Conv, BN in training mode, ReLU, MaxPool)', () => compare('cnnb', 16, 'block1', 4), 300_000);
  it('ResNet18 layer1 (two basic blocks with BN and residual adds)', () => compare('resnet18', 32, 'layer1', 2), 400_000);
  it('MobileNetV3-small features.4 (depthwise, squeeze-excite, hard-swish)', () => compare('mobilenetv3-small', 32, 'features.4', 2), 400_000);
});
