/** Builds the trainer's per-stage runners (train + eval sessions) for a method, without the training loop. */
import ort from 'onnxruntime-node';
import { ADAMW_DEFAULTS } from '../../src/optim/adamw.js';
import { blockLayout, buildEvalGraph, buildTrainStep } from '../../src/train/artifacts.js';
import { BlockRunner } from '../../src/train/runner.js';
import { createSession } from '../../src/runtime/session.js';
import { planStages, type Stage } from '../../src/train/stages.js';
import { benchRunConfig } from '../../src/bench/throughput.js';
import type { PreparedModel } from '../../src/train/model.js';
import type { Method } from '../../src/train/options.js';

export interface Built {
  stages: Stage[];
  runners: BlockRunner[];
}

export async function buildRunners(pm: PreparedModel, method: Method, classes: number, batch: number, lr: number): Promise<Built> {
  const cfg = benchRunConfig(method, classes, pm.imageSize[0], batch, pm.fromScratch);
  const stages = planStages(pm, cfg);
  const runners: BlockRunner[] = [];
  for (const { block, objective } of stages) {
    const layout = blockLayout(block, objective.params);
    const init = layout.pack((name) => objective.params.find((p) => p.name === name)?.init ?? new Float32Array(block.constants.get(name)!.raw.slice().buffer));
    const train = await buildTrainStep({ block, objective, classes, batchSize: batch, adamw: { ...ADAMW_DEFAULTS } }, layout);
    const sessions = { train: await createSession(train), eval: await createSession(buildEvalGraph(block, objective, layout, classes)) };
    const state = new Map(block.state.map((s) => [s, { data: new Float32Array(block.constants.get(s)!.raw.slice().buffer), dims: block.constants.get(s)!.dims }]));
    runners.push(new BlockRunner(block.name, layout, { params: init, state }, sessions, new Map(block.state.map((s) => [s, block.constants.get(s)!.dims])), lr));
  }
  return { stages, runners };
}

/** A learnable toy batch: per-class colour patterns plus noise, labels 0…J−1 cycling. */
export function toyBatch(batch: number, channels: number, size: number, classes: number, seed = 7): { x: ort.Tensor; labels: ort.Tensor; y: number[] } {
  let s = seed >>> 0;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  const plane = size * size;
  const x = new Float32Array(batch * channels * plane);
  const y: number[] = [];
  for (let n = 0; n < batch; n++) {
    const c = n % classes;
    y.push(c);
    for (let ch = 0; ch < channels; ch++)
      for (let i = 0; i < plane; i++) {
        const row = Math.floor(i / size);
        const col = i % size;
        const pattern = Math.sin(((c + 1) * (row + 2 * ch + 1) * Math.PI) / size) * Math.cos(((c % 3) + 1) * col * 0.3);
        x[(n * channels + ch) * plane + i] = pattern + 0.3 * rnd();
      }
  }
  return {
    x: new ort.Tensor('float32', x, [batch, channels, size, size]),
    labels: new ort.Tensor('int64', BigInt64Array.from(y.map(BigInt)), [batch]),
    y,
  };
}

/** Runs `steps` train steps of every stage on the same batch; returns each stage's loss per step. */
export async function trainSteps(runners: BlockRunner[], x0: ort.Tensor, labels: ort.Tensor, steps: number): Promise<number[][]> {
  const losses = runners.map(() => [] as number[]);
  for (let t = 0; t < steps; t++) {
    let x = x0;
    for (const [k, r] of runners.entries()) {
      const out = await r.trainStep(x, labels);
      losses[k]!.push(out.loss);
      x = out.next;
    }
  }
  return losses;
}
