/**
 * Transfer tools: the network's own head as a final SFF block, pooled linear goodness heads,
 * label smoothing, and the held-out test split scored once at the end (built-in models and
 * data, no ../shared).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { prepareModel } from '../../src/train/model.js';
import { finetune } from '../../src/train/finetune.js';
import { buildBlockRunner, planStages } from '../../src/train/stages.js';
import { benchRunConfig } from '../../src/bench/throughput.js';
import { blockLayout, buildEvalGraph } from '../../src/train/artifacts.js';
import { BlockRunner } from '../../src/train/runner.js';
import { createSession } from '../../src/runtime/session.js';
import { evaluateModel } from '../../src/eval/evaluateModel.js';
import { formatEvent } from '../../src/train/report.js';
import { toyBatch } from '../baselines/helpers.js';
import { resolveConfig, TRAIN_DEFAULTS, type RunConfig } from '../../src/train/options.js';
import type { PreparedModel } from '../../src/train/model.js';
import { matchPretrainedClassifier, type MatchedClassifier } from '../../src/train/classifierInit.js';
import { prepareData } from '../../src/data/index.js';

const J = 4;
const B = 16;
const SIZE = 32;
const runners: BlockRunner[] = [];
afterAll(async () => {
  for (const r of runners) await r.release();
});

async function stageRunners(pm: PreparedModel, cfg: RunConfig, lr: number, labelSmoothing = 0, headInit?: MatchedClassifier) {
  const out: { name: string; kind: string; runner: BlockRunner }[] = [];
  for (const stage of planStages(pm, cfg, headInit)) {
    const runner = await buildBlockRunner(stage, { classes: J, batchSize: B, lr, labelSmoothing, withEval: true, runtime: { threads: 1 } });
    runners.push(runner);
    out.push({ name: stage.block.name, kind: stage.objective.kind, runner });
  }
  return out;
}

describe("the network's own head as a final SFF block", () => {
  it('takes the layers between the last feature map and the classifier, and learns through a pooled linear head', async () => {
    const pm = await prepareModel('builtin:mobilenetv3-small', { imageSize: SIZE });
    const head = pm.headBlock!;
    expect(head.input).toBe(pm.blocks.at(-1)!.output);
    expect(head.index).toBe(pm.blocks.length);
    // features.12 (the projection conv), pooling and classifier.0/.1 — not the last Linear (classifier.3).
    const names = head.nodes.map((n) => n.name).join(' ');
    expect(names).toMatch(/features\.12/);
    expect(names).toMatch(/classifier\.0/);
    expect(names).not.toMatch(/classifier\.3/);
    expect(head.outputShape).toEqual([1024]);
    expect(head.trainable.length).toBeGreaterThan(0);

    const cfg = { ...benchRunConfig('sff', J, SIZE, B, true), headBlock: true, pooledHeads: 2 };
    const stages = await stageRunners(pm, cfg, 1e-3);
    expect(stages.map((s) => s.name).at(-1)).toBe('head');
    // The head block and the last two body blocks score with a pooled linear map, the rest with the aux conv.
    expect(stages.map((s) => s.kind)).toEqual([...new Array(pm.blocks.length - 2).fill('sff'), 'linear', 'linear', 'linear']);
    const { x, labels } = toyBatch(B, 3, SIZE, J);
    const losses: number[] = [];
    for (let t = 0; t < 15; t++) {
      let input: ort.Tensor = x;
      for (const s of stages) {
        const r = await s.runner.trainStep(input, labels);
        if (s.name === 'head') losses.push(r.loss);
        input = r.next;
      }
    }
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses.at(-1)!, losses.map((l) => l.toFixed(3)).join(' ')).toBeLessThan(0.5 * losses[0]!);
  }, 120_000);

  it("starts its J-way map from the classifier rows matched on training images: the chain then reproduces the network's own logits", async () => {
    const pm = await prepareModel('builtin:mobilenetv3-small', { imageSize: SIZE, classes: 10 });
    const data = await prepareData({ path: 'builtin:shapes', imageSize: [SIZE, SIZE], channels: 3, subset: 200, noCache: true });
    const m = (await matchPretrainedClassifier(pm, data.train, 10, data.preprocess, { threads: 1 }, 4))!;
    expect(m.images).toBe(40);
    expect(new Set(m.source).size).toBe(10); // one source class per new class
    m.meanProb.forEach((p) => expect(p).toBeGreaterThan(0));
    // norm none: each block passes its output on unchanged, as the pretrained network does.
    const cfg = { ...benchRunConfig('sff', 10, SIZE, B, true), headBlock: true, norm: 'none' as const };
    const stages = [];
    for (const { block, objective } of planStages(pm, cfg, m)) {
      const layout = blockLayout(block, objective.params);
      const init = layout.pack((name) => objective.params.find((p) => p.name === name)?.init ?? new Float32Array(block.constants.get(name)!.raw.slice().buffer));
      const state = new Map(block.state.map((s) => [s, { data: new Float32Array(block.constants.get(s)!.raw.slice().buffer), dims: block.constants.get(s)!.dims }]));
      const runner = new BlockRunner(block.name, layout, { params: init, state }, { eval: await createSession(buildEvalGraph(block, objective, layout, 10)) }, new Map(block.state.map((s) => [s, block.constants.get(s)!.dims])), 0);
      runners.push(runner);
      stages.push(runner);
    }
    const { x } = toyBatch(3, 3, SIZE, 10);
    let input: ort.Tensor = x;
    let scores: ArrayLike<number> = [];
    for (const r of stages) {
      const o = await r.evaluate(input);
      input = o.next;
      scores = o.goodness;
    }
    const whole = await createSession(pm.imported.model);
    const logits = (await whole.run({ [pm.inputName]: x }))[pm.imported.model.graph.outputs[0]!.name]!.data as Float32Array;
    await whole.release();
    // The random built-in network's logits are tiny: compare relative to their scale.
    let scale = 0;
    let diff = 0;
    for (let n = 0; n < 3; n++)
      for (let j = 0; j < 10; j++) {
        const l = logits[n * 10 + m.source[j]!]!;
        scale = Math.max(scale, Math.abs(l));
        diff = Math.max(diff, Math.abs(scores[n * 10 + j]! - l));
      }
    expect(scale).toBeGreaterThan(0);
    expect(diff, `max |diff| ${diff} at logit scale ${scale}`).toBeLessThan(1e-3 * scale);
  }, 120_000);

  it('is refused, with the reason, where the head has nothing before its classifier', async () => {
    await expect(finetune({ model: 'builtin:cnnb', data: 'builtin:shapes', imageSize: 16, epochs: 1, maxStepsPerEpoch: 1, headBlock: true, quiet: true, noExport: true, out: mkdtempSync(join(tmpdir(), 'sff-hb-')) })).rejects.toThrow(/--head-block/);
  }, 60_000);
});

describe('defaults for a pretrained graph', () => {
  const facts = (fromScratch: boolean, withHead = true) => ({ imageSize: [224, 224] as [number, number], fromScratch, shortName: 'm', normalize: undefined, blocks: [1, 2, 3, 4, 5], ...(withHead ? { headBlock: {} } : {}) });
  const resolve = (o: Record<string, unknown>, fromScratch = false, withHead = true) => resolveConfig({ model: 'm.onnx', data: 'd', ...o }, facts(fromScratch, withHead), ['a', 'b']);

  it('runs the head block at the lower learning rate that keeps its start, with weighted ensembling; 3e-4 without it', () => {
    const on = resolve({});
    expect(on.headBlock).toBe(true);
    expect(on.lr).toBe(TRAIN_DEFAULTS.lr.pretrainedHeadBlock);
    expect(on.ensemble).toBe('weighted');
    expect(resolve({ headBlock: false }).lr).toBe(TRAIN_DEFAULTS.lr.pretrained);
    expect(resolve({}, false, false).lr).toBe(TRAIN_DEFAULTS.lr.pretrained);
    expect(resolve({ method: 'bp' }).lr).toBe(TRAIN_DEFAULTS.lr.pretrained);
    expect(resolve({}, true, false).lr).toBe(TRAIN_DEFAULTS.lr.fromScratch);
    expect(resolve({ lr: 1e-4 }).lr).toBe(1e-4);
  });

  it('ensembles by validation-fitted weights from scratch and with the head block, the last four blocks of a headless body', () => {
    expect(resolve({}, true, false).ensemble).toBe('weighted');
    expect(resolve({ headBlock: false }).ensemble).toBe('last:4');
    expect(resolveConfig({ model: 'm.onnx', data: 'd' }, { ...facts(false, false), blocks: [1, 2, 3] }, ['a', 'b']).ensemble).toBe('all');
    expect(resolve({ ensemble: 'all' }, true, false).ensemble).toBe('all');
    expect(resolve({ ensemble: 'auto' }, true, false).ensemble).toBe('weighted');
  });
});

describe('label smoothing', () => {
  it("the train step's loss is PyTorch's smoothed cross-entropy of the scores it returns", async () => {
    const pm = await prepareModel('builtin:cnnb', { imageSize: 16 });
    const eps = 0.1;
    const [stage] = await stageRunners(pm, benchRunConfig('sff', J, 16, B, true), 1e-3, eps);
    const { x, labels, y } = toyBatch(B, 3, 16, J);
    const r = await stage!.runner.trainStep(x, labels);
    let expected = 0;
    for (let n = 0; n < B; n++) {
      const row = Array.from(r.goodness.subarray(n * J, (n + 1) * J));
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
      const logp = row.map((v) => v - lse);
      expected += -(1 - eps) * logp[y[n]!]! - (eps * logp.reduce((a, v) => a + v, 0)) / J;
    }
    expect(r.loss).toBeCloseTo(expected / B, 4);
  }, 60_000);
});

describe('held-out test split', () => {
  it('scores the exported model once on images never used for a choice, and writes summary.json', async () => {
    const out = mkdtempSync(join(tmpdir(), 'sff-test-'));
    const r = await finetune({
      model: 'builtin:cnnb', data: 'builtin:shapes', imageSize: 16, batchSize: 64, maxStepsPerEpoch: 12, epochs: 3, out, quiet: true, threads: 1,
      split: '70/15/15', augment: 'flip', schedule: 'cosine', warmup: 0.25, labelSmoothing: 0.1, ensemble: 'weighted',
    });
    const t = r.test!;
    expect(t.count).toBeGreaterThan(0);
    expect(t.acc).toHaveLength(3);
    expect(Object.keys(t.layers)).toEqual(expect.arrayContaining(['all', 'weighted', 'last:1']));
    // The exported model on the test images is the validation-weighted ensemble of the trained blocks.
    expect(t.exported).toBeCloseTo(t.ensemble.acc, 6);
    expect(t.ensemble.weights).toEqual(r.best!.ensemble.weights);
    // The export check scores validation with weights fitted there: it carries the cross-validated figure beside it, and says so.
    expect(r.exportCheck!.crossValidated).toBe(r.best!.ensemble.acc);
    const line = formatEvent({ type: 'export', path: r.modelPath!, sidecar: r.sidecarPath!, check: r.exportCheck!, heads: r.exportedHeads! })[0]!;
    expect(line).toMatch(/accuracy [\d.]+% on the validation images its ensemble weights were fitted on; [\d.]+% cross-validated\)$/);
    expect(t.exported!).toBeGreaterThan(0.2);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(summary.test.exported).toBe(t.exported);
    expect(summary.config.testFraction).toBeCloseTo(0.15, 12);
    expect(summary.config).toMatchObject({ augment: 'flip', schedule: 'cosine', warmup: 0.25, labelSmoothing: 0.1 });
    // Cosine: the last epoch's rate is far below the base; the test split is disjoint from val (same counts as eval sees).
    expect(r.history.at(-1)!.lr[0]!).toBeLessThan(0.2 * r.config.lr);
    expect(existsSync(r.modelPath!)).toBe(true);
    // `eval --shares 70/15/15 --split test` scores the same held-out images independently.
    const ev = await evaluateModel(r.modelPath!, { data: 'builtin:shapes', shares: '70/15/15', split: 'test', threads: 1 });
    expect(ev.images).toBe(t.count);
    expect(ev.accuracy).toBeCloseTo(t.exported!, 6);
    expect(ev.selection).toEqual({ seed: 0, shares: '70/15/15', from: 'options' });
    // The export records the cut (metadata and model.json): eval on the same data needs no --shares.
    const recorded = await evaluateModel(r.modelPath!, { data: 'builtin:shapes', threads: 1 });
    expect(recorded).toMatchObject({ split: 'test', images: t.count, selection: { seed: 0, shares: '70/15/15', from: 'recorded' } });
    expect(recorded.accuracy).toBeCloseTo(t.exported!, 6);
    const sidecar = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8'));
    expect(sidecar.source.split).toEqual({ data: 'builtin:shapes', seed: 0, valFraction: 0.15, testFraction: 0.15 });
  }, 180_000);

  it('BP reports test accuracy the same way; --split and --val-fraction are exclusive', async () => {
    const out = mkdtempSync(join(tmpdir(), 'sff-test-bp-'));
    const r = await finetune({ model: 'builtin:cnnb', data: 'builtin:shapes', imageSize: 16, batchSize: 64, maxStepsPerEpoch: 4, epochs: 1, out, quiet: true, threads: 1, method: 'bp', split: '70/15/15' });
    expect(r.test!.acc).toHaveLength(1);
    expect(r.test!.exported).toBeCloseTo(r.test!.acc[0]!, 6);
    await expect(finetune({ model: 'builtin:cnnb', data: 'builtin:shapes', split: '70/15/15', valFraction: 0.1, quiet: true, out: mkdtempSync(join(tmpdir(), 'sff-test-opts-')) })).rejects.toThrow(/--split or --val-fraction/);
  }, 120_000);
});
