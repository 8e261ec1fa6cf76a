/**
 * Every node of the generated train-step and eval graphs of CNNB, ResNet18 and MobileNetV3-small,
 * built for 'webgpu', runs on onnxruntime's WebGPU EP: none falls back to the CPU. Where each node
 * ran comes from onnxruntime's profile (createPlacedSession); a failure lists the nodes that did not.
 * Placement does not depend on the image size, so small inputs keep SwiftShader's time down.
 */
import { describe, expect, it } from 'vitest';
import { prepareModel } from '../../src/train/model.js';
import { planStages } from '../../src/train/finetune.js';
import { benchRunConfig } from '../../src/bench/throughput.js';
import { blockLayout, buildEvalGraph, buildTrainStep } from '../../src/train/artifacts.js';
import { createPlacedSession } from '../../src/train/session.js';
import { ADAMW_DEFAULTS } from '../../src/optim/adamw.js';
import { warnWebgpuSkip, webgpuSkipReason } from './helpers.js';

warnWebgpuSkip('test/gpu/placement.test.ts');

async function offDevice(model: string, imageSize: number): Promise<string[]> {
  const B = 2;
  const pm = await prepareModel(`builtin:${model}`, { imageSize });
  const off: string[] = [];
  let nodes = 0;
  for (const { block, objective } of planStages(pm, benchRunConfig('sff', 10, imageSize, B, true))) {
    const layout = blockLayout(block, objective.params);
    const graphs = {
      train: await buildTrainStep({ block, objective, classes: 10, batchSize: B, adamw: { ...ADAMW_DEFAULTS }, target: 'webgpu' }, layout),
      eval: buildEvalGraph(block, objective, layout, 10, 'webgpu'),
    };
    for (const [kind, graph] of Object.entries(graphs)) {
      const { session, placement } = await createPlacedSession(graph, { device: 'webgpu' });
      await session.release();
      nodes += placement!.nodes;
      for (const n of placement!.fallback) off.push(`${block.name} ${kind}: ${n.op} '${n.node}' on ${n.provider}`);
    }
  }
  expect(nodes).toBeGreaterThan(100);
  return off;
}

describe.skipIf(webgpuSkipReason !== undefined)('every generated node on the WebGPU EP', () => {
  it('CNNB (BatchNorm in training mode, MaxPool)', async () => expect(await offDevice('cnnb', 16)).toEqual([]), 300_000);
  it('ResNet18', async () => expect(await offDevice('resnet18', 32)).toEqual([]), 600_000);
  it('MobileNetV3-small', async () => expect(await offDevice('mobilenetv3-small', 32)).toEqual([]), 600_000);
});
