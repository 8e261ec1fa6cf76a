/**
 * A goodness head that pools before a linear map: scores[n,j] = W_j · pool(Y_n) + b_j, where
 * pool is the global average over (h,w) for a [B,C,H,W] block output (nothing for [B,C] or
 * [B,C,1,1]). This is how a classifier reads a late feature map, so it suits the last blocks
 * of a pretrained network and the network's own head run as a block (blocks/headBlock.ts),
 * whose classifier it replaces. Trained, like the aux conv, by softmax cross-entropy with
 * the scores as logits; the next block receives Y unchanged.
 */
import type { GraphBuilder } from '../ir/builder.js';
import { Rng } from '../util/rng.js';
import type { Objective } from './objective.js';

export interface PooledLinearSpec {
  /** Block output dims per sample: [C, H, W] or [C]. */
  outputShape: number[];
  classes: number;
  seed: number;
  /** Starting weights ([J, C] row-major) and biases instead of the random init, e.g. pretrained classifier rows. */
  init?: { weight: Float32Array; bias: Float32Array };
}

/** A J×C map on C pooled channels: PyTorch's default Linear init (uniform ±1/√C) unless `spec.init` is given. */
export function pooledLinearObjective(spec: PooledLinearSpec, prefix: string): Objective {
  const c = spec.outputShape[0]!;
  const j = spec.classes;
  if (!(c > 0) || spec.outputShape.length < 1) throw new Error(`a pooled linear head needs a [C] or [C,H,W] block output, got [${spec.outputShape.join(', ')}]`);
  const rng = new Rng(spec.seed);
  const bound = 1 / Math.sqrt(c);
  const weight = `${prefix}.linear.weight`;
  const bias = `${prefix}.linear.bias`;
  const spatial = spec.outputShape.slice(1).reduce((a, d) => a * d, 1);
  if (spec.init && (spec.init.weight.length !== j * c || spec.init.bias.length !== j))
    throw new Error(`pooled linear head: initial weights hold ${spec.init.weight.length} + ${spec.init.bias.length} values, expected ${j}×${c} + ${j}`);
  return {
    kind: 'linear',
    params: [
      { name: weight, dims: [j, c], init: spec.init ? Float32Array.from(spec.init.weight) : Float32Array.from({ length: j * c }, () => rng.uniform(-bound, bound)) },
      { name: bias, dims: [j], init: spec.init ? Float32Array.from(spec.init.bias) : Float32Array.from({ length: j }, () => rng.uniform(-bound, bound)) },
    ],
    append: (b, y, param) => {
      const pooled = spec.outputShape.length === 3 && spatial > 1 ? b.op('GlobalAveragePool', [y], {}, 'pool/GlobalAveragePool') : y;
      const flat = spec.outputShape.length === 1 ? pooled : b.op('Flatten', [pooled], { axis: 1 }, 'pool/Flatten');
      return { next: y, scores: b.op('Gemm', [flat, param(weight), param(bias)], { transB: 1 }, 'linear/Gemm') };
    },
  };
}
