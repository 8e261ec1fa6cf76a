/**
 * The paper's small CIFAR CNNs. `cnn` (pure FF, no BatchNorm) and `cnnb` (BatchNorm after
 * each conv): conv 3→32, 32→64, 64→128 (3×3, pad 1) + ReLU, 2×2 max-pool after the first two;
 * BP classifier Flatten → Linear(128·(S/4)² → J). The BP baseline's Dropout is not in the
 * inference graph; its rate is recorded as `sff.dropout` for the BP trainer to insert before
 * the final Gemm.
 */
import type { Model } from '../ir/graph.js';
import { CIFAR_NORM, NetBuilder } from './layers.js';

const CHANNELS = [32, 64, 128];
const POOL_AFTER = [true, true, false];
/** Dropout before the BP classifier (choice: the paper does not give the rate). */
export const CNN_DROPOUT = 0.5;

export function buildCnn(opts: { batchNorm: boolean; classes: number; imageSize: number; seed: number }): Model {
  const kind = opts.batchNorm ? 'cnnb' : 'cnn';
  const nb = new NetBuilder(opts.seed, kind, opts.imageSize);
  let x = 'input';
  let cin = 3;
  let size = opts.imageSize;
  CHANNELS.forEach((cout, i) => {
    const p = `block${i}`;
    x = nb.convBnAct(
      x,
      { conv: `${p}.conv`, bn: opts.batchNorm ? `${p}.bn` : undefined, act: `${p}.relu` },
      { cin, cout, kernel: 3, pad: 1, bias: true, init: 'torch-default' },
      { act: 'Relu' },
    );
    if (POOL_AFTER[i]) {
      x = nb.maxPool(`${p}.pool`, x, 2, 2);
      size = Math.floor(size / 2);
    }
    cin = cout;
  });
  x = nb.flatten('classifier', x);
  const logits = nb.linear('classifier.fc', x, cin * size * size, opts.classes, 'torch-default', 'logits');
  return nb.finish(logits, opts.classes, { kind, norm: CIFAR_NORM, dropout: CNN_DROPOUT });
}
