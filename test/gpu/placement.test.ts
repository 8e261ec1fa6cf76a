/**
 * Every node of the generated train-step and eval graphs of CNNB, ResNet18 and MobileNetV3-small,
 * built for 'webgpu', runs on onnxruntime's WebGPU EP: none falls back to the CPU. Where each node
 * ran comes from onnxruntime's profile (stagePlacements); a failure lists the nodes that did not.
 * Placement does not depend on the image size, so small inputs keep SwiftShader's time down; most
 * of the time is SwiftShader compiling each session's shaders (CNNB's six graphs took 6 s on the
 * idle 2-core machine, MobileNetV3-small's 18 over 10 minutes while it was heavily shared: hence the timeouts).
 */
import { describe, expect, it } from 'vitest';
import { prepareModel } from '../../src/train/model.js';
import { planStages } from '../../src/train/stages.js';
import { benchRunConfig } from '../../src/bench/throughput.js';
import { stagePlacements } from '../../src/train/placement.js';
import { warnWebgpuSkip, webgpuSkipReason } from './helpers.js';

warnWebgpuSkip('test/gpu/placement.test.ts');

async function offDevice(model: string, imageSize: number): Promise<string[]> {
  const B = 2;
  const pm = await prepareModel(`builtin:${model}`, { imageSize });
  const placements = await stagePlacements(planStages(pm, benchRunConfig('sff', 10, imageSize, B, true)), { device: 'webgpu', batchSize: B, classes: 10 });
  expect(placements.reduce((a, p) => a + p.train.nodes + p.eval.nodes, 0)).toBeGreaterThan(100);
  return placements.flatMap((p) =>
    (['train', 'eval'] as const).flatMap((kind) => p[kind].fallback.map((n) => `${p.name} ${kind}: ${n.op} '${n.node}' on ${n.provider}`)),
  );
}

describe.skipIf(webgpuSkipReason !== undefined)('every generated node on the WebGPU EP', () => {
  it('CNNB (BatchNorm in training mode, MaxPool)', async () => expect(await offDevice('cnnb', 16)).toEqual([]), 600_000);
  it('ResNet18', async () => expect(await offDevice('resnet18', 32)).toEqual([]), 1_200_000);
  it('MobileNetV3-small', async () => expect(await offDevice('mobilenetv3-small', 32)).toEqual([]), 1_800_000);
});
