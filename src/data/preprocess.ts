/**
 * Preprocessing: decode + resize/centre-crop with sharp (to uint8 HWC at the model size),
 * parsing of the `normalize` option, and the fast uint8 HWC → float32 NCHW kernel.
 */
import sharp from 'sharp';
import { DataError } from './errors.js';
import { checkRegularFile } from '../util/limits.js';

export type Triple = [number, number, number];

export const IMAGENET_MEAN: Triple = [0.485, 0.456, 0.406];
export const IMAGENET_STD: Triple = [0.229, 0.224, 0.225];

/**
 * Named normalisations (mean/std on the [0,1] scale), as model zoos document them:
 * - imagenet: torchvision and most PyTorch ImageNet models;
 * - inception: mean 0.5, std 0.5, i.e. pixels to [−1, 1] (Inception, TF/Keras "tf" mode, timm's inception preset);
 * - tf128: (pixel − 128) / 127 on 0–255 pixels, what TensorFlow's uint8 MobileNet exports expect;
 * - none: pixels in [0, 1].
 */
export const NORMALIZE_PRESETS: Record<string, { mean: Triple; std: Triple; note: string }> = {
  imagenet: { mean: IMAGENET_MEAN, std: IMAGENET_STD, note: 'torchvision ImageNet mean/std' },
  inception: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], note: 'pixels to [-1, 1]' },
  tf128: { mean: [128 / 255, 128 / 255, 128 / 255], std: [127 / 255, 127 / 255, 127 / 255], note: '(pixel - 128) / 127' },
  none: { mean: [0, 0, 0], std: [1, 1, 1], note: 'pixels in [0, 1]' },
};

/**
 * Parses a normalisation spec: a preset name (NORMALIZE_PRESETS), or "r,g,b/r,g,b"
 * (mean/std on the [0,1] scale). A single value on either side ("0.5/0.25") is used
 * for all three channels.
 */
export function parseNormalize(spec: string): { mean: Triple; std: Triple } {
  const s = spec.trim();
  const preset = NORMALIZE_PRESETS[s.toLowerCase()];
  if (preset) return { mean: [...preset.mean], std: [...preset.std] };
  const help =
    `expected a preset (${Object.keys(NORMALIZE_PRESETS).join(', ')}), or "MEAN/STD" with three comma-separated numbers each on the [0,1] scale, ` +
    `e.g. "0.485,0.456,0.406/0.229,0.224,0.225"`;
  const halves = s.split('/');
  if (halves.length !== 2) throw new DataError(`normalize: cannot parse "${spec}": ${help}`);
  const parse = (part: string, what: 'mean' | 'std'): Triple => {
    const items = part.split(',').map((t) => t.trim());
    if (items.length !== 1 && items.length !== 3) {
      throw new DataError(`normalize: ${what} "${part}" has ${items.length} values, needs 3 (or 1 for all channels): ${help}`);
    }
    const vals = items.map((t) => {
      const v = t === '' ? NaN : Number(t);
      if (!Number.isFinite(v)) throw new DataError(`normalize: ${what} value "${t}" in "${spec}" is not a number: ${help}`);
      if (what === 'std' && v <= 0) throw new DataError(`normalize: std value ${t} in "${spec}" must be > 0`);
      return v;
    });
    return vals.length === 1 ? [vals[0]!, vals[0]!, vals[0]!] : [vals[0]!, vals[1]!, vals[2]!];
  };
  return { mean: parse(halves[0]!, 'mean'), std: parse(halves[1]!, 'std') };
}

/** Augmentation padding for random crops: 4 px at 32×32, scaled with the image size. */
export function cropPadding(height: number, width: number): number {
  return Math.max(1, Math.round((4 * Math.min(height, width)) / 32));
}

// ---------------------------------------------------------------------------------------
// Decoding (sharp)

sharp.cache(false);

/** Image files larger than this are refused (skipped with the reason) rather than decoded. */
export const MAX_IMAGE_FILE_BYTES = 2 ** 30;

/**
 * Decodes an image file (JPEG/PNG/WebP/… anything libvips reads), resizes so it covers
 * H×W (shorter side to target for square targets) and centre-crops to exactly H×W, and
 * returns 8-bit RGB HWC (grayscale replicated, alpha dropped). Throws on unreadable input.
 */
export async function decodeImageFile(file: string | Buffer, height: number, width: number): Promise<Buffer> {
  // A pipe or device named like an image would block the decoder forever; a huge file is no photo.
  if (typeof file === 'string') checkRegularFile(file, MAX_IMAGE_FILE_BYTES, (m) => new Error(m));
  const { data, info } = await sharp(file, { failOn: 'error', sequentialRead: true })
    .resize(width, height, { fit: 'cover', position: 'centre' })
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.width !== width || info.height !== height) {
    throw new Error(`decoded to ${info.width}×${info.height}, expected ${width}×${height}`);
  }
  if (info.channels === 3 && data.length === width * height * 3) return data;
  // Defensive: any other band count (should not happen after toColourspace('srgb')).
  const n = width * height;
  const out = Buffer.allocUnsafe(n * 3);
  const c = info.channels;
  if (data.length !== n * c) throw new Error(`unexpected decoded size ${data.length} for ${width}×${height}×${c}`);
  for (let p = 0; p < n; p++) {
    const base = p * c;
    if (c < 3) {
      const v = data[base]!;
      out[3 * p] = v; out[3 * p + 1] = v; out[3 * p + 2] = v;
    } else {
      out[3 * p] = data[base]!; out[3 * p + 1] = data[base + 1]!; out[3 * p + 2] = data[base + 2]!;
    }
  }
  return out;
}

/** Resizes/centre-crops a raw uint8 HWC image (1 or 3 channels) to H×W with sharp. */
export async function resizeRaw(
  pixels: Uint8Array, srcH: number, srcW: number, channels: 1 | 3, height: number, width: number,
): Promise<Buffer> {
  const { data, info } = await sharp(pixels, { raw: { width: srcW, height: srcH, channels } })
    .resize(width, height, { fit: 'cover', position: 'centre' })
    .toColourspace(channels === 1 ? 'b-w' : 'srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.width !== width || info.height !== height || info.channels !== channels) {
    throw new Error(`resize produced ${info.width}×${info.height}×${info.channels}, expected ${width}×${height}×${channels}`);
  }
  return data;
}

// ---------------------------------------------------------------------------------------
// uint8 HWC → float32 NCHW

/** Per-channel lookup tables: lut[c*256 + v] = (v/255 − mean[c]) / std[c]. */
export function makeLut(mean: readonly number[], std: readonly number[], channels: number): Float32Array {
  const lut = new Float32Array(256 * channels);
  for (let c = 0; c < channels; c++) {
    const m = mean[Math.min(c, mean.length - 1)] ?? 0;
    const s = std[Math.min(c, std.length - 1)] ?? 1;
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = (v / 255 - m) / s;
  }
  return lut;
}

/**
 * Writes one image into `dst` at `off` as C×H×W floats via `lut`.
 * `src` is HWC with `sc` channels (1 or 3); the output has `oc` channels (1 or 3):
 * 1→3 replicates, 3→1 takes ITU-R BT.601 luminance (as PIL's convert('L')).
 */
export function writeNCHW(
  src: Uint8Array, sc: number, hw: number, dst: Float32Array, off: number, oc: number, lut: Float32Array,
): void {
  if (sc === 3 && oc === 3) {
    const o1 = off + hw, o2 = off + 2 * hw;
    for (let p = 0, s = 0; p < hw; p++, s += 3) {
      dst[off + p] = lut[src[s]!]!;
      dst[o1 + p] = lut[256 + src[s + 1]!]!;
      dst[o2 + p] = lut[512 + src[s + 2]!]!;
    }
  } else if (sc === 1 && oc === 1) {
    for (let p = 0; p < hw; p++) dst[off + p] = lut[src[p]!]!;
  } else if (sc === 1 && oc === 3) {
    const o1 = off + hw, o2 = off + 2 * hw;
    for (let p = 0; p < hw; p++) {
      const v = src[p]!;
      dst[off + p] = lut[v]!;
      dst[o1 + p] = lut[256 + v]!;
      dst[o2 + p] = lut[512 + v]!;
    }
  } else if (sc === 3 && oc === 1) {
    for (let p = 0, s = 0; p < hw; p++, s += 3) {
      const y = (src[s]! * 19595 + src[s + 1]! * 38470 + src[s + 2]! * 7471 + 32768) >>> 16;
      dst[off + p] = lut[y]!;
    }
  } else {
    throw new Error(`writeNCHW: unsupported channel conversion ${sc} → ${oc}`);
  }
}

/**
 * Random crop with zero padding `pad` at offsets (dy, dx) ∈ [0, 2·pad], then optional
 * horizontal flip, uint8 HWC → uint8 HWC into `out` (same size as `src`).
 */
export function augmentInto(
  src: Uint8Array, h: number, w: number, c: number, pad: number, dy: number, dx: number, flip: boolean, out: Uint8Array,
): void {
  const rowBytes = w * c;
  for (let y = 0; y < h; y++) {
    const sy = y + dy - pad;
    const orow = y * rowBytes;
    if (sy < 0 || sy >= h) {
      out.fill(0, orow, orow + rowBytes);
      continue;
    }
    const srow = sy * rowBytes;
    const shift = dx - pad;
    if (!flip) {
      // Contiguous copy of the in-range part, zeros outside.
      const x0 = Math.max(0, -shift), x1 = Math.min(w, w - shift);
      if (x0 > 0) out.fill(0, orow, orow + x0 * c);
      if (x1 > x0) out.set(src.subarray(srow + (x0 + shift) * c, srow + (x1 + shift) * c), orow + x0 * c);
      if (x1 < w) out.fill(0, orow + Math.max(x0, x1) * c, orow + rowBytes);
    } else {
      for (let x = 0; x < w; x++) {
        const sx = w - 1 - x + shift;
        const o = orow + x * c;
        if (sx < 0 || sx >= w) {
          for (let k = 0; k < c; k++) out[o + k] = 0;
        } else {
          const s = srow + sx * c;
          for (let k = 0; k < c; k++) out[o + k] = src[s + k]!;
        }
      }
    }
  }
}

/**
 * Fused augment + normalise for 3-channel storage and 3-channel output: the random crop
 * (offsets dy, dx in [0, 2·pad], zero padding) and optional horizontal flip are applied
 * while writing NCHW floats, with no intermediate image. Same result as augmentInto
 * followed by writeNCHW.
 */
export function writeNCHWAugmented3(
  src: Uint8Array, h: number, w: number, dst: Float32Array, off: number, lut: Float32Array,
  pad: number, dy: number, dx: number, flip: boolean,
): void {
  const hw = h * w;
  const o1 = off + hw, o2 = off + 2 * hw;
  const z0 = lut[0]!, z1 = lut[256]!, z2 = lut[512]!;
  const shift = dx - pad;
  // Output columns [x0, x1) read real pixels; the rest are padding.
  const x0 = flip ? Math.max(0, shift) : Math.max(0, -shift);
  const x1 = flip ? Math.min(w, w + shift) : Math.min(w, w - shift);
  for (let y = 0; y < h; y++) {
    const sy = y + dy - pad;
    const row = y * w;
    if (sy < 0 || sy >= h || x1 <= x0) {
      dst.fill(z0, off + row, off + row + w);
      dst.fill(z1, o1 + row, o1 + row + w);
      dst.fill(z2, o2 + row, o2 + row + w);
      continue;
    }
    if (x0 > 0) {
      dst.fill(z0, off + row, off + row + x0);
      dst.fill(z1, o1 + row, o1 + row + x0);
      dst.fill(z2, o2 + row, o2 + row + x0);
    }
    if (x1 < w) {
      dst.fill(z0, off + row + x1, off + row + w);
      dst.fill(z1, o1 + row + x1, o1 + row + w);
      dst.fill(z2, o2 + row + x1, o2 + row + w);
    }
    const srow = sy * w;
    if (!flip) {
      for (let x = x0, s = (srow + x0 + shift) * 3; x < x1; x++, s += 3) {
        const p = row + x;
        dst[off + p] = lut[src[s]!]!;
        dst[o1 + p] = lut[256 + src[s + 1]!]!;
        dst[o2 + p] = lut[512 + src[s + 2]!]!;
      }
    } else {
      for (let x = x0, s = (srow + w - 1 - x0 + shift) * 3; x < x1; x++, s -= 3) {
        const p = row + x;
        dst[off + p] = lut[src[s]!]!;
        dst[o1 + p] = lut[256 + src[s + 1]!]!;
        dst[o2 + p] = lut[512 + src[s + 2]!]!;
      }
    }
  }
}
