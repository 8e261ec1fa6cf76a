/**
 * The input height×width a graph is imported at. A graph exported with symbolic H/W runs at any
 * size, so the importer picks one instead of stopping: the user's --image-size, else the size the
 * graph fixes, else the size recorded in the model's metadata, else the size shared by the
 * training images (when the caller knows it), else 224×224 for a 3-channel input (ImageNet's
 * size, what such graphs are almost always exported for). The choice carries its reason, which
 * the CLI prints.
 */
import { getMetadata, type Dim, type Model } from '../ir/graph.js';
import { ImportError } from './errors.js';

export type ImageSizeSource = 'option' | 'graph' | 'metadata' | 'data' | 'default';

export interface ImageSizeChoice {
  size: [number, number];
  source: ImageSizeSource;
  /** One sentence: which size and why (printed by `train` and `inspect`). */
  reason: string;
}

export interface ImageSizeHints {
  /** --image-size: always wins. */
  explicit?: [number, number];
  /** The size every training image shares, and where it comes from (e.g. the dataset path). */
  data?: { size: [number, number]; source: string };
  /** Use 224×224 even for an input that is not 3-channel (inspect: show something rather than stop). */
  anyChannels?: boolean;
}

export const DEFAULT_IMAGE_SIZE: [number, number] = [224, 224];

/** Metadata keys read for a recorded input size: our own exports' preprocess record, then common free-form keys. */
const SIZE_KEYS = ['image_size', 'input_size', 'imageSize', 'inputSize'];

function positivePair(v: unknown): [number, number] | undefined {
  const arr = Array.isArray(v) ? v : typeof v === 'number' ? [v, v] : undefined;
  if (!arr) return undefined;
  const nums = (arr.length === 1 ? [arr[0], arr[0]] : arr.length === 2 ? arr : arr.length === 3 ? arr.slice(1) : []).map(Number);
  const [h, w] = nums;
  return Number.isInteger(h) && Number.isInteger(w) && h! > 0 && w! > 0 ? [h!, w!] : undefined;
}

/** "224", "224,224", "[224, 224]", "3,224,224" or JSON → [h, w]. */
function parseRecordedSize(s: string): [number, number] | undefined {
  try {
    return positivePair(JSON.parse(s));
  } catch {
    return positivePair(s.split(/[x,×\s]+/).filter(Boolean).map(Number));
  }
}

/** The input size recorded in the model's metadata, with the key it came from. */
export function recordedImageSize(model: Model): { size: [number, number]; key: string } | undefined {
  const pre = getMetadata(model, 'sff.preprocess');
  if (pre) {
    try {
      const size = positivePair((JSON.parse(pre) as { size?: unknown }).size);
      if (size) return { size, key: 'sff.preprocess' };
    } catch {
      // A malformed record is not a size; fall through to the other keys.
    }
  }
  for (const key of SIZE_KEYS) {
    const v = getMetadata(model, key);
    const size = v === undefined ? undefined : parseRecordedSize(v);
    if (size) return { size, key };
  }
  return undefined;
}

const fmt = (s: readonly [number, number]) => `${s[0]}×${s[1]}`;

/** Chooses the import size of input `input` with NCHW dims `shape`. */
export function chooseImageSize(model: Model, input: string, shape: readonly Dim[], hints: ImageSizeHints = {}): ImageSizeChoice {
  const [, c, h, w] = shape;
  if (hints.explicit) {
    const fixed = typeof h === 'number' && typeof w === 'number';
    return {
      size: hints.explicit,
      source: 'option',
      reason: `${fmt(hints.explicit)} from --image-size${fixed && (h !== hints.explicit[0] || w !== hints.explicit[1]) ? ` (the graph was exported at ${h}×${w})` : ''}`,
    };
  }
  if (typeof h === 'number' && typeof w === 'number' && h > 0 && w > 0) return { size: [h, w], source: 'graph', reason: `${h}×${w}, fixed by the graph` };
  const symbolic = `input '${input}' has symbolic height/width ([${shape.map((d) => d ?? '?').join(', ')}])`;
  const recorded = recordedImageSize(model);
  if (recorded) return { size: recorded.size, source: 'metadata', reason: `${fmt(recorded.size)} recorded in the model's metadata ('${recorded.key}'); ${symbolic}; override with --image-size H,W` };
  if (hints.data)
    return { size: hints.data.size, source: 'data', reason: `${fmt(hints.data.size)}, the size every image of ${hints.data.source} has; ${symbolic}; override with --image-size H,W` };
  if (c === 3 || hints.anyChannels)
    return {
      size: DEFAULT_IMAGE_SIZE,
      source: 'default',
      reason: `${fmt(DEFAULT_IMAGE_SIZE)} assumed (ImageNet's size; nothing in the model or data records one); ${symbolic}; override with --image-size H,W`,
    };
  throw new ImportError(`${symbolic} and ${typeof c === 'number' ? `${c} channel(s)` : 'no fixed channel count'}, so no default size applies; give the image size (--image-size H,W)`);
}

/** --image-size: "224", "224,224" or "224x192" → [h, w] (a number means a square). */
export function parseImageSize(s: string | number | readonly [number, number] | undefined): [number, number] | undefined {
  if (s === undefined || s === '') return undefined;
  if (Array.isArray(s)) return parseImageSize(s.join(','));
  const parts = String(s).split(/[x,×]/).map((p) => Number(p.trim()));
  const [h, w] = parts.length === 1 ? [parts[0]!, parts[0]!] : parts;
  if (parts.length > 2 || !Number.isInteger(h) || !Number.isInteger(w) || h! < 1 || w! < 1)
    throw new Error(`--image-size should be H or H,W with positive integers, got '${s}'`);
  return [h!, w!];
}
