import { describe, expect, it } from 'vitest';
import { DataError, U8ImageSet, batches, parseNormalize } from '../../src/data/index.js';
import { augmentInto, writeNCHW, writeNCHWAugmented3, makeLut } from '../../src/data/preprocess.js';

describe('parseNormalize', () => {
  it('knows imagenet and none', () => {
    expect(parseNormalize('imagenet')).toEqual({ mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    expect(parseNormalize('none')).toEqual({ mean: [0, 0, 0], std: [1, 1, 1] });
  });
  it('parses mean/std triples and single values', () => {
    expect(parseNormalize(' 0.5, 0.4,0.3 / 0.2,0.1,0.25 ')).toEqual({ mean: [0.5, 0.4, 0.3], std: [0.2, 0.1, 0.25] });
    expect(parseNormalize('0.5/0.25')).toEqual({ mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
  });
  it('rejects malformed specs with clear messages', () => {
    expect(() => parseNormalize('imagenett')).toThrow(DataError);
    expect(() => parseNormalize('0.5,0.5/0.2,0.2,0.2')).toThrow(/mean "0.5,0.5" has 2 values/);
    expect(() => parseNormalize('0.5,x,0.5/0.2,0.2,0.2')).toThrow(/"x".*not a number/);
    expect(() => parseNormalize('0,0,0/1,0,1')).toThrow(/must be > 0/);
    expect(() => parseNormalize('0,0,0/1,1,1/2')).toThrow(/cannot parse/);
  });
});

describe('normalisation', () => {
  const H = 2, W = 3;
  const store = Uint8Array.from({ length: 2 * H * W * 3 }, (_, k) => (k * 37) & 255);
  const set = new U8ImageSet('val', store, 3, H, W, 3, Int32Array.from([0, 1]), Int32Array.from([4, 7]));

  it('maps uint8 HWC to (v/255 − mean)/std NCHW, per channel', async () => {
    const { mean, std } = parseNormalize('imagenet');
    const it = batches(set, { batchSize: 2, shuffle: false, seed: 0, epoch: 0, mean, std });
    const b = (await it.next()).value!;
    expect(b.n).toBe(2);
    expect(Array.from(b.y)).toEqual([4n, 7n]);
    for (let i = 0; i < 2; i++) {
      for (let c = 0; c < 3; c++) {
        for (let p = 0; p < H * W; p++) {
          const v = store[i * H * W * 3 + p * 3 + c]!;
          expect(b.x[i * 3 * H * W + c * H * W + p]).toBeCloseTo((v / 255 - mean[c]!) / std[c]!, 5);
        }
      }
    }
  });

  it('RGB → 1 channel uses BT.601 luminance', () => {
    const src = Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 200, 30]);
    const dst = new Float32Array(4);
    writeNCHW(src, 3, 4, dst, 0, 1, makeLut([0], [1], 1));
    const lum = (r: number, g: number, b: number) => Math.round(0.299 * r + 0.587 * g + 0.114 * b) / 255;
    expect(dst[0]).toBeCloseTo(lum(255, 0, 0), 2);
    expect(dst[1]).toBeCloseTo(lum(0, 255, 0), 2);
    expect(dst[2]).toBeCloseTo(lum(0, 0, 255), 2);
    expect(dst[3]).toBeCloseTo(lum(10, 200, 30), 2);
  });

  it('crop with padding and flip', () => {
    // 3×3 single-channel image, pad 1; offsets (dy, dx) ∈ [0, 2].
    const src = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]); // 3×3
    const out = new Uint8Array(9);
    augmentInto(src, 3, 3, 1, 1, 1, 1, false, out);
    expect(Array.from(out)).toEqual(Array.from(src));
    augmentInto(src, 3, 3, 1, 1, 0, 2, false, out); // crop = src(y−1, x+1): content moves down and left
    expect(Array.from(out)).toEqual([0, 0, 0, 2, 3, 0, 5, 6, 0]);
    augmentInto(src, 3, 3, 1, 1, 1, 1, true, out);
    expect(Array.from(out)).toEqual([3, 2, 1, 6, 5, 4, 9, 8, 7]);
    augmentInto(src, 3, 3, 1, 1, 2, 0, true, out);
    expect(Array.from(out)).toEqual([5, 4, 0, 8, 7, 0, 0, 0, 0]); // crop = src(y+1, x−1), then mirrored
  });

  it('fused 3-channel augment equals augmentInto + writeNCHW for every offset and flip', () => {
    const h = 5, w = 6, pad = 2;
    const src = Uint8Array.from({ length: h * w * 3 }, (_, k) => (k * 29 + 7) & 255);
    const lut = makeLut([0.4, 0.5, 0.6], [0.2, 0.3, 0.25], 3);
    const tmp = new Uint8Array(src.length);
    for (let dy = 0; dy <= 2 * pad; dy++) for (let dx = 0; dx <= 2 * pad; dx++) for (const flip of [false, true]) {
      const a = new Float32Array(3 * h * w + 4).fill(99), b = new Float32Array(3 * h * w + 4).fill(99);
      augmentInto(src, h, w, 3, pad, dy, dx, flip, tmp);
      writeNCHW(tmp, 3, h * w, a, 2, 3, lut);
      writeNCHWAugmented3(src, h, w, b, 2, lut, pad, dy, dx, flip);
      expect(Array.from(b)).toEqual(Array.from(a));
    }
  });
});
