/** The baselines' train graphs learn: BP (end to end through the classifier) and CwC-mod (channel-group goodness + linear probe). */
import { afterAll, describe, expect, it } from 'vitest';
import { prepareModel } from '../../src/train/model.js';
import { buildRunners, toyBatch, trainSteps, type Built } from './helpers.js';

const J = 4;
const B = 16;
const SIZE = 16;
const built: Built[] = [];

afterAll(async () => {
  for (const b of built) await Promise.all(b.runners.map((r) => r.release()));
});

describe('baseline train steps on a small problem', () => {
  it('BP: the whole network as one block, its loss falls', async () => {
    const pm = await prepareModel('builtin:cnnb', { imageSize: SIZE });
    const b = await buildRunners(pm, 'bp', J, B, 1e-3);
    built.push(b);
    expect(b.runners).toHaveLength(1);
    expect(b.stages[0]!.objective.kind).toBe('classifier');
    const { x, labels } = toyBatch(B, 3, SIZE, J);
    const [loss] = await trainSteps(b.runners, x, labels, 12);
    expect(loss![0]).toBeGreaterThan(0.8 * Math.log(J));
    expect(loss!.every(Number.isFinite)).toBe(true);
    expect(loss!.at(-1)!).toBeLessThan(0.5 * loss![0]!);
  }, 30_000);

  it('CwC-mod: every block and the linear probe reduce their own loss', async () => {
    const pm = await prepareModel('builtin:cnn', { imageSize: SIZE });
    const b = await buildRunners(pm, 'cwc', J, B, 5e-3);
    built.push(b);
    expect(b.stages.map((s) => s.objective.kind)).toEqual(['cwc', 'cwc', 'cwc', 'linear']);
    expect(b.stages.at(-1)!.role).toBe('probe');
    b.runners.at(-1)!.lr = 3e-4; // the probe reads 8192 features of moving blocks: a smaller step
    const { x, labels } = toyBatch(B, 3, SIZE, J);
    const losses = await trainSteps(b.runners, x, labels, 20);
    for (const [k, l] of losses.entries()) {
      expect(l.every(Number.isFinite), `stage ${k}`).toBe(true);
      const tail = l.slice(-5).reduce((a, v) => a + v, 0) / 5;
      expect(tail, `stage ${k}: ${l.map((v) => v.toFixed(3)).join(' ')}`).toBeLessThan(0.9 * l[0]!);
    }
  }, 30_000);
});
