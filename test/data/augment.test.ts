/** Augmentation presets: torchvision-style RandomResizedCrop boxes, the bilinear crop-resize, flips, and the loader wiring. */
import { describe, expect, it } from 'vitest';
import { AUGMENT_PRESETS, parseAugment, resizedCropInto, sampleResizedCrop, type AugmentPreset } from '../../src/data/augment.js';
import { batches, prepareData, Rng } from '../../src/data/index.js';

const H = 20;
const W = 30;
/** A horizontal ramp in channel 0, a vertical one in channel 1, constant 7 in channel 2. */
function ramp(): Uint8Array {
  const img = new Uint8Array(H * W * 3);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const o = (y * W + x) * 3;
      img[o] = x * 8;
      img[o + 1] = y * 10;
      img[o + 2] = 7;
    }
  return img;
}

describe('augmentation presets', () => {
  it('parses presets, the bare flag and booleans', () => {
    expect(parseAugment(undefined)).toBe('none');
    expect(parseAugment(true)).toBe('crop');
    expect(parseAugment('')).toBe('crop');
    expect(parseAugment(false)).toBe('none');
    for (const p of AUGMENT_PRESETS) expect(parseAugment(p)).toBe(p);
    expect(() => parseAugment('mixup')).toThrow(/--augment 'mixup' is not a preset/);
  });

  it('RandomResizedCrop boxes fit the image, with area share and aspect ratio in range', () => {
    const rng = new Rng(3);
    const areas: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const b = sampleResizedCrop(rng, H, W, [0.08, 1]);
      expect(b.y0).toBeGreaterThanOrEqual(0);
      expect(b.x0).toBeGreaterThanOrEqual(0);
      expect(b.y0 + b.height).toBeLessThanOrEqual(H);
      expect(b.x0 + b.width).toBeLessThanOrEqual(W);
      const share = (b.height * b.width) / (H * W);
      areas.push(share);
      // Rounding a 20×30 box to whole pixels moves the share and the ratio a little.
      expect(share).toBeGreaterThan(0.04);
      expect(b.width / b.height).toBeGreaterThan(0.5);
      expect(b.width / b.height).toBeLessThan(2);
    }
    const mean = areas.reduce((a, v) => a + v, 0) / areas.length;
    expect(mean).toBeGreaterThan(0.35); // uniform in [0.08, 1] has mean 0.54; rejected tries skew it a little
    expect(mean).toBeLessThan(0.65);
    const light = sampleResizedCrop(new Rng(1), H, W, [0.35, 1]);
    expect((light.height * light.width) / (H * W)).toBeGreaterThan(0.3);
  });

  it('a full-image box is the identity, its flip a mirror; a half box is a bilinear 2× zoom', () => {
    const src = ramp();
    const out = new Uint8Array(src.length);
    resizedCropInto(src, H, W, 3, { y0: 0, x0: 0, height: H, width: W }, false, out);
    expect(Array.from(out)).toEqual(Array.from(src));
    resizedCropInto(src, H, W, 3, { y0: 0, x0: 0, height: H, width: W }, true, out);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) expect(out[(y * W + x) * 3]).toBe(src[(y * W + (W - 1 - x)) * 3]);
    // Left half, full height, stretched to the full width: output column x samples source x/2 − 0.25 (half-pixel centres).
    resizedCropInto(src, H, W, 3, { y0: 0, x0: 0, height: H, width: W / 2 }, false, out);
    for (const x of [1, 7, 20, 28]) expect(out[(5 * W + x) * 3]).toBe(Math.round(8 * (x / 2 - 0.25)));
    expect(out[(5 * W + 0) * 3]).toBe(0); // clamped at the box edge
    expect(out[(5 * W + 7) * 3 + 1]).toBe(50); // rows untouched
    expect(out[(5 * W + 7) * 3 + 2]).toBe(7);
  });

  it('the loader applies a preset to the training split only, reproducibly per (seed, epoch)', async () => {
    const d = await prepareData({ path: 'builtin:shapes', imageSize: [16, 16], channels: 3, subset: 64, noCache: true });
    const first = async (set: typeof d.train, augment: AugmentPreset | boolean, epoch = 0) => {
      for await (const b of batches(set, { batchSize: 16, shuffle: false, seed: 0, epoch, augment, ...d.preprocess })) return Float32Array.from(b.x);
      throw new Error('no batch');
    };
    const plain = await first(d.train, 'none');
    const rrc = await first(d.train, 'rrc');
    expect(rrc).not.toEqual(plain);
    expect(await first(d.train, 'rrc')).toEqual(rrc);
    expect(await first(d.train, 'rrc', 1)).not.toEqual(rrc);
    expect(await first(d.val, 'rrc')).toEqual(await first(d.val, 'none'));
    expect(await first(d.train, true)).toEqual(await first(d.train, 'crop'));
  });
});
