/** The warning for BN running statistics that a run is too short to converge (src/train/batchnorm.ts). */
import { describe, expect, it } from 'vitest';
import { prepareModel } from '../../src/train/model.js';
import { runningStatsWarning } from '../../src/train/batchnorm.js';

describe('runningStatsWarning', () => {
  it("warns for torchvision MobileNetV3-small's momentum 0.01 over 120 steps, and names the fix", async () => {
    const pm = await prepareModel('builtin:mobilenetv3-small', { imageSize: 32 });
    expect(pm.fromScratch).toBe(true);
    const w = runningStatsWarning({ blocks: pm.blocks, fromScratch: true, totalSteps: 120 });
    // 0.99^120 = 0.299: 30% of the initial statistics left; 0.05 needs ⌈ln 0.05 / ln 0.99⌉ = 299 steps.
    expect(w).toContain('momentum 0.01 over 120 steps leaves 30%');
    expect(w).toContain('--bn-momentum 0.1');
    expect(w).toContain('at least 299 steps');
    expect(runningStatsWarning({ blocks: pm.blocks, fromScratch: true, totalSteps: 400 })).toBeUndefined();
    expect(runningStatsWarning({ blocks: pm.blocks, fromScratch: true, bnMomentum: 0.1, totalSteps: 120 })).toBeUndefined();
    // Pretrained statistics are already meaningful: no warning however slow the momentum.
    expect(runningStatsWarning({ blocks: pm.blocks, fromScratch: false, totalSteps: 120 })).toBeUndefined();
  });

  it('is silent for networks without BatchNorm and for the PyTorch default 0.1 over a normal run', async () => {
    const cnn = await prepareModel('builtin:cnn', { imageSize: 16 });
    expect(runningStatsWarning({ blocks: cnn.blocks, fromScratch: true, totalSteps: 10 })).toBeUndefined();
    const cnnb = await prepareModel('builtin:cnnb', { imageSize: 16 });
    expect(runningStatsWarning({ blocks: cnnb.blocks, fromScratch: true, totalSteps: 312 })).toBeUndefined();
    expect(runningStatsWarning({ blocks: cnnb.blocks, fromScratch: true, totalSteps: 10 })).toContain('momentum 0.1 over 10 steps');
  });
});
