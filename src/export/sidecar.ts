/**
 * model.json, written beside model.onnx: what a deployer needs and cannot read from the ONNX file
 * with onnxruntime-node (which exposes no custom metadata): the class names in output order, the
 * exact preprocessing, what `scores` holds, the ensemble, the source model and the versions used.
 */
import { writeFileSync } from 'node:fs';
import { versions, type Versions } from '../runtime/versions.js';
import type { SplitRecord } from '../data/split.js';

/** ONNX metadata key holding the run's `SplitRecord` (JSON). */
export const SPLIT_METADATA_KEY = 'sff.split';

export interface ModelSidecar {
  format: 'sff-finetune/model@1';
  model: string;
  classes: string[];
  input: { name: string; layout: 'NCHW'; dtype: 'float32'; shape: (number | 'N')[]; channelOrder: 'RGB' | 'gray' };
  /**
   * From an image file to the input tensor: decode, resize so the image covers H×W (the shorter
   * side scaled to fit when the aspect ratios match) with `interpolation`, centre-crop to exactly
   * H×W, drop alpha, scale 0–255 to [0, 1] (× `scale`), subtract `mean` and divide by `std` per channel.
   */
  preprocess: {
    resize: { height: number; width: number; fit: 'cover'; crop: 'centre'; interpolation: 'lanczos3' };
    scale: number;
    mean: number[];
    std: number[];
  };
  outputs: {
    scores: { shape: ['N', number]; kind: 'logits' | 'probabilities'; description: string };
    goodness: { name: string; block: string }[];
  };
  ensemble: { rule: string; weights: Record<string, number> };
  weightsDtype: 'float32' | 'float16';
  /** Where the weights came from; `split` is the cut of the training data (what `eval` re-creates). */
  source: { model: string; description: string; method: string; bestEpoch?: number; validationAccuracy?: number; split?: SplitRecord };
  versions: Versions;
}

export interface SidecarSpec {
  modelFile: string;
  classes: string[];
  inputName: string;
  inputShape: number[];
  preprocess: { size: [number, number]; mean: number[]; std: number[] };
  scores: 'logits' | 'probabilities';
  goodness: { name: string; block: string }[];
  ensemble: { rule: string; blocks: string[]; weights: number[] };
  dtype: 'float32' | 'float16';
  source: ModelSidecar['source'];
}

export function buildSidecar(s: SidecarSpec): ModelSidecar {
  return {
    format: 'sff-finetune/model@1',
    model: s.modelFile,
    classes: s.classes,
    input: { name: s.inputName, layout: 'NCHW', dtype: 'float32', shape: ['N', ...s.inputShape], channelOrder: s.inputShape[0] === 1 ? 'gray' : 'RGB' },
    preprocess: {
      resize: { height: s.preprocess.size[0], width: s.preprocess.size[1], fit: 'cover', crop: 'centre', interpolation: 'lanczos3' },
      scale: 1 / 255,
      mean: s.preprocess.mean,
      std: s.preprocess.std,
    },
    outputs: {
      scores: {
        shape: ['N', s.classes.length],
        kind: s.scores,
        description: s.scores === 'probabilities' ? 'softmax over classes of the ensemble goodness' : 'ensemble goodness (weighted mean of the blocks\' aux-head scores); argmax is the prediction',
      },
      goodness: s.goodness,
    },
    ensemble: { rule: s.ensemble.rule, weights: Object.fromEntries(s.ensemble.blocks.map((b, k) => [b, s.ensemble.weights[k]!])) },
    weightsDtype: s.dtype,
    source: s.source,
    versions: versions(),
  };
}

export function writeSidecar(path: string, sidecar: ModelSidecar): void {
  writeFileSync(path, JSON.stringify(sidecar, null, 2) + '\n');
}
