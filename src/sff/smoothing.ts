/**
 * Label smoothing for the per-block loss: the target puts 1 − ε on the true class and spreads
 * ε evenly over all J classes (PyTorch's CrossEntropyLoss(label_smoothing=ε)), so
 * L = mean_n( −(1 − ε)·log p[n, y_n] − ε·mean_j log p[n, j] ), with p = softmax of the scores.
 * ε = 0 is the plain SFF loss: softmax cross-entropy with the goodness as logits.
 */
import type { GraphBuilder } from '../ir/builder.js';
import { appendGoodnessLoss, labelColumn } from './head.js';

export function checkLabelSmoothing(eps: number): number {
  if (!(eps >= 0 && eps < 1)) throw new Error(`--label-smoothing must be in [0, 1), got ${eps}`);
  return eps;
}

export function appendSmoothedLoss(b: GraphBuilder, scores: string, labels: string, smoothing: number): string {
  const eps = checkLabelSmoothing(smoothing);
  if (eps === 0) return appendGoodnessLoss(b, scores, labels);
  const logp = b.op('LogSoftmax', [scores], { axis: 1 }, 'loss/LogSoftmax');
  const picked = b.op('GatherElements', [logp, labelColumn(b, labels)], { axis: 1 }, 'loss/pick');
  const nll = b.op('ReduceMean', [picked], { axes: [0, 1], keepdims: 0 }, 'loss/mean');
  const uniform = b.op('ReduceMean', [logp], { axes: [0, 1], keepdims: 0 }, 'loss/uniform');
  const mixed = b.op(
    'Add',
    [b.op('Mul', [nll, b.constFloat([1 - eps], [], 'smooth_keep')], {}, 'loss/keep'), b.op('Mul', [uniform, b.constFloat([eps], [], 'smooth_spread')], {}, 'loss/spread')],
    {},
    'loss/mix',
  );
  return b.op('Neg', [mixed], {}, 'loss/Neg');
}
