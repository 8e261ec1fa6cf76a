/**
 * One SFF block's train step against PyTorch (test/fixtures/sff/step.json, made by
 * scripts/make_sff_fixture.py): loss, goodness, the normalised output, every
 * parameter after two AdamW steps, and the BN running statistics.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { Graph } from '../../src/ir/graph.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { floatTensor } from '../../src/ir/tensor.js';
import { blockLayout, buildEvalGraph, buildTrainStep } from '../../src/train/artifacts.js';
import { BlockRunner } from '../../src/train/runner.js';
import { createSession } from '../../src/runtime/session.js';
import type { HeadSpec } from '../../src/sff/head.js';
import { sffObjective } from '../../src/sff/objective.js';
import type { TrainBlock } from '../../src/blocks/block.js';

interface Fixture {
  N: number; C_in: number; C: number; H: number; J: number; lr: number; weight_decay: number;
  param_names: string[]; param_shapes: number[][]; init: number[][];
  steps: { x: number[]; labels: number[]; loss: number; goodness: number[]; next: number[]; params_after: number[][]; running_mean: number[]; running_var: number[] }[];
}

const fx: Fixture = JSON.parse(readFileSync(new URL('../fixtures/sff/step.json', import.meta.url), 'utf8'));

function fixtureBlock(): TrainBlock {
  const g = new Graph();
  const b = new GraphBuilder(g);
  const conv = b.op('Conv', ['input', 'conv.weight'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, '/block0/conv/Conv');
  const bn = b.op('BatchNormalization', [conv, 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var'], {}, '/block0/bn/BatchNormalization');
  const relu = b.op('Relu', [bn], {}, '/block0/relu/Relu');
  const pool = b.op('MaxPool', [relu], { kernel_shape: [2, 2], strides: [2, 2] }, '/block0/pool/MaxPool');
  const constants = new Map();
  fx.param_names.slice(0, 3).forEach((n, i) => constants.set(n, floatTensor(n, fx.param_shapes[i]!, fx.init[i]!)));
  constants.set('bn.running_mean', floatTensor('bn.running_mean', [fx.C], new Array(fx.C).fill(0)));
  constants.set('bn.running_var', floatTensor('bn.running_var', [fx.C], new Array(fx.C).fill(1)));
  return {
    index: 0, name: 'block0', input: 'input', output: pool, nodes: g.nodes, constants,
    trainable: fx.param_names.slice(0, 3), state: ['bn.running_mean', 'bn.running_var'],
    inputShape: [fx.C_in, fx.H, fx.H], outputShape: [fx.C, fx.H / 2, fx.H / 2],
  };
}

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0;
  let err = 0;
  for (let i = 0; i < b.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]!));
    err = Math.max(err, Math.abs(a[i]! - b[i]!));
  }
  return err / Math.max(scale, 1e-12);
}

async function fixtureRunner(bnMomentum?: number) {
  const block = fixtureBlock();
  const head: HeadSpec = { channels: fx.C, classes: fx.J, kernel: 3, norm: 'chain', seed: 0 };
  const objective = sffObjective(head, 'sff.block0');
  const layout = blockLayout(block, objective.params);
  const byName = new Map(fx.param_names.map((n, i) => [n, Float32Array.from(fx.init[i]!)]));
  const headName = (n: string) => n.replace('sff.block0.norm', 'ln').replace('sff.block0.aux', 'aux');
  const init = layout.pack((n) => byName.get(n) ?? byName.get(headName(n))!);
  const adamw = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: fx.weight_decay };
  const train = await buildTrainStep({ block, objective, classes: fx.J, batchSize: fx.N, adamw, ...(bnMomentum !== undefined ? { bnMomentum } : {}) }, layout);
  const evalModel = buildEvalGraph(block, objective, layout, fx.J);
  const sessions = { train: await createSession(train), eval: await createSession(evalModel) };
  const state = new Map(block.state.map((s) => [s, { data: new Float32Array(block.constants.get(s)!.raw.slice().buffer), dims: [fx.C] }]));
  const runner = new BlockRunner('block0', layout, { params: init, state }, sessions, new Map(block.state.map((s) => [s, [fx.C]])), fx.lr);
  const feeds = (step: Fixture['steps'][number]) => [
    new ort.Tensor('float32', Float32Array.from(step.x), [fx.N, fx.C_in, fx.H, fx.H]),
    new ort.Tensor('int64', BigInt64Array.from(step.labels.map(BigInt)), [fx.N]),
  ] as const;
  return { runner, layout, headName, feeds };
}

describe('SFF train step vs PyTorch', () => {
  it('reproduces two AdamW steps of a conv+BN+ReLU+pool block with LayerNorm and aux head', async () => {
    const { runner, layout, headName, feeds } = await fixtureRunner();
    for (const step of fx.steps) {
      const r = await runner.trainStep(...feeds(step));
      // Tolerance: float32 against float32 PyTorch, 1e-4 relative to each tensor's largest value.
      expect(Math.abs(r.loss - step.loss) / Math.abs(step.loss)).toBeLessThan(1e-4);
      expect(maxRel(r.goodness, step.goodness)).toBeLessThan(1e-4);
      expect(maxRel(r.next.data as Float32Array, step.next)).toBeLessThan(1e-4);
      const params = runner.currentParams();
      fx.param_names.forEach((n, i) => {
        const e = layout.entries.find((x) => x.name === n || headName(x.name) === n)!;
        expect(maxRel(params.subarray(e.offset, e.offset + e.size), step.params_after[i]!), n).toBeLessThan(1e-4);
      });
      const st = runner.currentState();
      expect(maxRel(st.get('bn.running_mean')!, step.running_mean)).toBeLessThan(1e-4);
      expect(maxRel(st.get('bn.running_var')!, step.running_var)).toBeLessThan(1e-4);
    }
    await runner.release();
  });

  it('--bn-momentum replaces the BN nodes\' momentum in the running-statistics update', async () => {
    // The fixture ran PyTorch's default momentum 0.1, so each step's batch statistics follow from
    // consecutive running values: μ_k = (rm_k − 0.9·rm_{k−1}) / 0.1 (the same for the unbiased var).
    const m = 0.5;
    const { runner, feeds } = await fixtureRunner(m);
    let prevRef = { mean: new Array(fx.C).fill(0), var: new Array(fx.C).fill(1) };
    let want = { mean: new Array(fx.C).fill(0), var: new Array(fx.C).fill(1) };
    for (const step of fx.steps) {
      await runner.trainStep(...feeds(step));
      const batch = (k: 'mean' | 'var', ref: number[]) => ref.map((r, c) => (r - 0.9 * prevRef[k][c]!) / 0.1);
      const mu = batch('mean', step.running_mean);
      const v = batch('var', step.running_var);
      want = { mean: want.mean.map((w, c) => (1 - m) * w + m * mu[c]!), var: want.var.map((w, c) => (1 - m) * w + m * v[c]!) };
      prevRef = { mean: step.running_mean, var: step.running_var };
      const st = runner.currentState();
      expect(maxRel(st.get('bn.running_mean')!, want.mean)).toBeLessThan(1e-3);
      expect(maxRel(st.get('bn.running_var')!, want.var)).toBeLessThan(1e-3);
      // Far from what the default momentum gives: the override took effect.
      expect(maxRel(st.get('bn.running_mean')!, step.running_mean)).toBeGreaterThan(0.5);
    }
    await runner.release();
  });
});
