/**
 * Built-in synthetic dataset ("builtin:shapes"): 10 classes of simple shapes and patterns
 * drawn with random colours, contrast, position, scale, small rotation and pixel noise.
 * Deterministic in the seed (each image has its own random stream, so the first k images
 * do not depend on how many are drawn). Learnable by a small CNN but not trivially: ring vs
 * circle, checker vs dot grid and the three stripe orientations get confusable when small,
 * low-contrast and noisy.
 */
import { Rng, STREAM } from '../util/rng.js';
import type { GeneratedPart, LoadedSource } from './source.js';

export const SHAPE_CLASSES = [
  'circle', 'square', 'triangle', 'cross', 'horizontal stripes',
  'vertical stripes', 'diagonal stripes', 'ring', 'checker', 'dot grid',
];

export const SYNTHETIC_TRAIN_COUNT = 5000;
export const SYNTHETIC_TEST_COUNT = 1000;

/** Coverage test of class `k` at shape-local coordinates (u, v) ∈ [-1, 1]² (v grows downwards). */
function inside(k: number, u: number, v: number, p: number): boolean {
  const au = Math.abs(u), av = Math.abs(v);
  switch (k) {
    case 0: return u * u + v * v <= 1;
    case 1: return au <= 0.8 && av <= 0.8;
    case 2: return v >= -0.9 && v <= 0.8 && au <= (0.95 * (v + 0.9)) / 1.7;
    case 3: return (au <= 0.27 && av <= 1) || (av <= 0.27 && au <= 1);
    case 4: return au <= 1 && av <= 1 && (Math.floor((v + 1) / p) & 1) === 0;
    case 5: return au <= 1 && av <= 1 && (Math.floor((u + 1) / p) & 1) === 0;
    case 6: return au <= 1 && av <= 1 && (Math.floor((u + v + 2) / (p * 1.41421356)) & 1) === 0;
    case 7: { const d = u * u + v * v; return d <= 1 && d >= 0.36; }
    case 8: return au <= 1 && av <= 1 && ((Math.floor((u + 1) / p) + Math.floor((v + 1) / p)) & 1) === 0;
    case 9: {
      if (au > 1 || av > 1) return false;
      const g = p * 1.5;
      const du = ((u + 1) % g) - g / 2, dv = ((v + 1) % g) - g / 2;
      return du * du + dv * dv <= (g * 0.3) * (g * 0.3);
    }
    default: return false;
  }
}

/** Renders image `index` (class index % 10) into `out` (H·W·3 bytes, HWC). */
export function renderShape(seed: number, stream: number, index: number, h: number, w: number, out: Uint8Array): number {
  const k = index % 10;
  const rng = new Rng(seed, stream, index);
  const bg = [rng.next(), rng.next(), rng.next()];
  const target = [rng.next(), rng.next(), rng.next()];
  // Push the target colour away from the background if they are too close.
  let dist = Math.hypot(target[0]! - bg[0]!, target[1]! - bg[1]!, target[2]! - bg[2]!);
  if (dist < 0.45) {
    for (let c = 0; c < 3; c++) target[c] = bg[c]! > 0.5 ? bg[c]! - 0.5 : bg[c]! + 0.5;
    dist = Math.hypot(target[0]! - bg[0]!, target[1]! - bg[1]!, target[2]! - bg[2]!);
  }
  const contrast = rng.uniform(0.75, 1);
  const fg = bg.map((b, c) => b + (target[c]! - b) * contrast);
  const side = Math.min(h, w);
  const r = rng.uniform(0.25, 0.42) * side; // half-size in pixels
  const cx = rng.uniform(r * 0.8, w - r * 0.8);
  const cy = rng.uniform(r * 0.8, h - r * 0.8);
  const theta = rng.uniform(-0.2, 0.2);
  const cos = Math.cos(theta), sin = Math.sin(theta);
  const period = 2 / (2 * (2 + rng.int(2))); // 2–3 stripe pairs across the patch
  const sigma = rng.uniform(0.02, 0.07);
  const ss = side <= 64 ? 2 : 1; // supersampling per axis
  const inv = 1 / (ss * ss);
  const bg0 = bg[0]!, bg1 = bg[1]!, bg2 = bg[2]!;
  const d0 = fg[0]! - bg0, d1 = fg[1]! - bg1, d2 = fg[2]! - bg2;
  // Pixels farther than this from the centre cannot touch the shape (|u|, |v| ≤ 1).
  const reach = (1.5 * r + 1) * (1.5 * r + 1);
  // Per-pixel noise from an inline xorshift32 seeded by the image's stream (fast).
  let ns = rng.nextU32() | 1;
  const noiseScale = (2 * sigma) / 4294967296;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let m = 0;
      const ex = x + 0.5 - cx, ey = y + 0.5 - cy;
      if (ex * ex + ey * ey <= reach) {
        let cover = 0;
        for (let sy = 0; sy < ss; sy++) {
          for (let sx = 0; sx < ss; sx++) {
            const px = x + (sx + 0.5) / ss - cx, py = y + (sy + 0.5) / ss - cy;
            const u = (px * cos + py * sin) / r, v = (-px * sin + py * cos) / r;
            if (inside(k, u, v, period)) cover++;
          }
        }
        m = cover * inv;
      }
      const o = (y * w + x) * 3;
      // Approximately normal noise: sum of three uniforms, scaled to std `sigma`.
      let a = 0, b = 0, c = 0;
      for (let j = 0; j < 3; j++) {
        ns ^= ns << 13; ns ^= ns >>> 17; ns ^= ns << 5; a += ns >>> 0;
        ns ^= ns << 13; ns ^= ns >>> 17; ns ^= ns << 5; b += ns >>> 0;
        ns ^= ns << 13; ns ^= ns >>> 17; ns ^= ns << 5; c += ns >>> 0;
      }
      out[o] = clamp255((bg0 + d0 * m + (a * noiseScale - 3 * sigma)) * 255);
      out[o + 1] = clamp255((bg1 + d1 * m + (b * noiseScale - 3 * sigma)) * 255);
      out[o + 2] = clamp255((bg2 + d2 * m + (c * noiseScale - 3 * sigma)) * 255);
    }
  }
  return k;
}

function clamp255(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}

function generated(seed: number, stream: number, count: number): GeneratedPart {
  return {
    kind: 'generated',
    labels: Int32Array.from({ length: count }, (_, i) => i % 10),
    channels: 3,
    render: (i, h, w, out) => { renderShape(seed, stream, i, h, w, out); },
    origin: 'builtin:shapes',
  };
}

/**
 * The synthetic dataset: `trainCount` training images (split into train/val later) and its
 * own `testCount`-image test split, all from `seed`. Images are rendered directly at the
 * model's size, only those actually used.
 */
export function loadShapes(
  seed: number, trainCount = SYNTHETIC_TRAIN_COUNT, testCount = SYNTHETIC_TEST_COUNT,
): LoadedSource {
  return {
    format: 'synthetic shapes',
    classes: [...SHAPE_CLASSES],
    train: generated(seed, STREAM.synthetic, trainCount),
    test: generated(seed, STREAM.syntheticTest, testCount),
    location: 'builtin:shapes',
  };
}
