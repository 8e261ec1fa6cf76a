/** CwC-mod's channel groups (SPEC §5): C % J ≠ 0 leaves the last channels out; C < J is a clear error. */
import { describe, expect, it } from 'vitest';
import ort from 'onnxruntime-node';
import { Graph, makeModel } from '../../src/ir/graph.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { cwcGroupSize, cwcObjective } from '../../src/sff/objective.js';
import { createSession } from '../../src/runtime/session.js';
import { prepareModel } from '../../src/train/model.js';
import { planStages } from '../../src/train/stages.js';
import { benchRunConfig } from '../../src/bench/throughput.js';

describe('CwC-mod channel grouping', () => {
  it('32 channels, 10 classes: groups of 3 channels, the last 2 channels left out', async () => {
    expect(cwcGroupSize(32, 10)).toBe(3);
    const [N, C, H, W, J] = [2, 32, 3, 2, 10];
    const g = new Graph();
    g.inputs.push({ name: 'y', type: { kind: 'tensor', elemType: 1, shape: [N, C, H, W] } });
    const b = new GraphBuilder(g);
    const out = cwcObjective(C, J).append(b, 'y', (n) => n);
    expect(out.next).toBe('y');
    g.outputs.push({ name: out.scores });
    const session = await createSession(makeModel(g, 17));
    const y = Float32Array.from({ length: N * C * H * W }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 5)));
    const res = await session.run({ y: new ort.Tensor('float32', y, [N, C, H, W]) });
    const scores = res[out.scores]!;
    expect(scores.dims).toEqual([N, J]);
    const plane = H * W;
    for (let n = 0; n < N; n++)
      for (let j = 0; j < J; j++) {
        let s = 0;
        for (let c = 3 * j; c < 3 * j + 3; c++) for (let i = 0; i < plane; i++) s += y[(n * C + c) * plane + i]! ** 2;
        expect((scores.data as Float32Array)[n * J + j]).toBeCloseTo(s / (3 * plane), 4);
      }
    // Channels 30 and 31 do not matter.
    const y2 = Float32Array.from(y);
    for (let n = 0; n < N; n++) for (let c = 30; c < 32; c++) for (let i = 0; i < plane; i++) y2[(n * C + c) * plane + i] = 100;
    const res2 = await session.run({ y: new ort.Tensor('float32', y2, [N, C, H, W]) });
    expect(Array.from(res2[out.scores]!.data as Float32Array)).toEqual(Array.from(scores.data as Float32Array));
    await session.release();
  });

  it('divisible case (64 channels, 8 classes) uses every channel', () => {
    expect(cwcGroupSize(64, 8)).toBe(8);
  });

  it('fewer channels than classes is a clear error', async () => {
    expect(() => cwcGroupSize(5, 10)).toThrow(/at least one channel per class.*5 channels for 10 classes.*--method sff/s);
    // The paper's CIFAR-100 CNN: the first block has 32 channels for 100 classes.
    const pm = await prepareModel('builtin:cnn', { imageSize: 16 });
    expect(() => planStages(pm, benchRunConfig('cwc', 100, 16, 8))).toThrow(/32 channels for 100 classes/);
    // SFF has no such limit.
    expect(planStages(pm, benchRunConfig('sff', 100, 16, 8))).toHaveLength(3);
  });
});
