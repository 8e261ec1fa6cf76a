/**
 * Training-time augmentation presets (`--augment`), applied to uint8 HWC images as they are
 * batched (training split only):
 * - `none`
 * - `flip`: horizontal flip with probability ½.
 * - `crop`: the CIFAR recipe, random crop with zero padding (4 px per 32) + flip.
 * - `rrc`: torchvision's ImageNet training transform, RandomResizedCrop (area share
 *   uniform in [0.08, 1], aspect ratio log-uniform in [3/4, 4/3], bilinear resize back to the
 *   input size) + flip. The crop is cut from the stored image, already at the input size.
 * - `rrc-light`: the same with area share in [0.35, 1], gentler for short fine-tuning runs.
 */
import type { Rng } from '../util/rng.js';

export const AUGMENT_PRESETS = ['none', 'flip', 'crop', 'rrc', 'rrc-light'] as const;
export type AugmentPreset = (typeof AUGMENT_PRESETS)[number];

export interface AugmentRecipe {
  crop: 'none' | 'pad' | 'resized';
  /** Area share range of a resized crop. */
  scale: [number, number];
  flip: boolean;
}

const RECIPES: Record<AugmentPreset, AugmentRecipe> = {
  none: { crop: 'none', scale: [1, 1], flip: false },
  flip: { crop: 'none', scale: [1, 1], flip: true },
  crop: { crop: 'pad', scale: [1, 1], flip: true },
  rrc: { crop: 'resized', scale: [0.08, 1], flip: true },
  'rrc-light': { crop: 'resized', scale: [0.35, 1], flip: true },
};

export function augmentRecipe(preset: AugmentPreset): AugmentRecipe {
  return RECIPES[preset];
}

/** `--augment` value → preset: a bare flag or `true` is the original `crop`, `false` is `none`. */
export function parseAugment(v: boolean | string | undefined): AugmentPreset {
  if (v === undefined || v === false || v === 'false') return 'none';
  if (v === true || v === '' || v === 'true') return 'crop';
  if ((AUGMENT_PRESETS as readonly string[]).includes(v)) return v as AugmentPreset;
  throw new Error(`--augment '${v}' is not a preset: use ${AUGMENT_PRESETS.join(', ')}`);
}

export interface CropBox {
  y0: number;
  x0: number;
  height: number;
  width: number;
}

const LOG_RATIO: [number, number] = [Math.log(3 / 4), Math.log(4 / 3)];

/**
 * torchvision's RandomResizedCrop.get_params: up to ten tries at a box of random area share
 * and aspect ratio that fits; else the whole image clamped to the ratio range, centred.
 */
export function sampleResizedCrop(rng: Rng, h: number, w: number, scale: [number, number]): CropBox {
  const area = h * w;
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * rng.uniform(scale[0], scale[1]);
    const ratio = Math.exp(rng.uniform(LOG_RATIO[0], LOG_RATIO[1]));
    const cw = Math.round(Math.sqrt(target * ratio));
    const ch = Math.round(Math.sqrt(target / ratio));
    if (cw > 0 && ch > 0 && cw <= w && ch <= h) return { y0: rng.int(h - ch + 1), x0: rng.int(w - cw + 1), height: ch, width: cw };
  }
  const r = w / h;
  let cw = w;
  let ch = h;
  if (r < 3 / 4) ch = Math.round(w / (3 / 4));
  else if (r > 4 / 3) cw = Math.round(h * (4 / 3));
  return { y0: Math.floor((h - ch) / 2), x0: Math.floor((w - cw) / 2), height: ch, width: cw };
}

/**
 * Cuts `box` out of uint8 HWC `src` (h×w×c) and resizes it bilinearly (half-pixel centres,
 * as PyTorch's align_corners=False) to h×w into `out`, mirrored horizontally when `flip`.
 */
export function resizedCropInto(src: Uint8Array, h: number, w: number, c: number, box: CropBox, flip: boolean, out: Uint8Array): void {
  const sy = box.height / h;
  const sx = box.width / w;
  const x0s = new Int32Array(w);
  const x1s = new Int32Array(w);
  const fxs = new Float32Array(w);
  for (let x = 0; x < w; x++) {
    const ox = flip ? w - 1 - x : x;
    const fx = Math.min(Math.max(box.x0 + (ox + 0.5) * sx - 0.5, box.x0), box.x0 + box.width - 1);
    const xa = Math.floor(fx);
    x0s[x] = xa;
    x1s[x] = Math.min(xa + 1, box.x0 + box.width - 1);
    fxs[x] = fx - xa;
  }
  for (let y = 0; y < h; y++) {
    const fy = Math.min(Math.max(box.y0 + (y + 0.5) * sy - 0.5, box.y0), box.y0 + box.height - 1);
    const ya = Math.floor(fy);
    const yb = Math.min(ya + 1, box.y0 + box.height - 1);
    const wy = fy - ya;
    const ra = ya * w * c;
    const rb = yb * w * c;
    const orow = y * w * c;
    for (let x = 0; x < w; x++) {
      const a = x0s[x]! * c;
      const b = x1s[x]! * c;
      const wx = fxs[x]!;
      for (let k = 0; k < c; k++) {
        const top = src[ra + a + k]! + (src[ra + b + k]! - src[ra + a + k]!) * wx;
        const bottom = src[rb + a + k]! + (src[rb + b + k]! - src[rb + a + k]!) * wx;
        out[orow + x * c + k] = Math.round(top + (bottom - top) * wy);
      }
    }
  }
}
