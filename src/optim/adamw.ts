/**
 * AdamW (decoupled weight decay, PyTorch's formulation) as graph ops on flat
 * parameter vectors, so one block's whole update is a dozen elementwise ops
 * however many tensors it has:
 *   m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
 *   p ← p·(1 − lr·wd) − lr · (m / (1−β1^t)) / (√(v / (1−β2^t)) + ε)
 */
import type { GraphBuilder } from '../ir/builder.js';

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const ADAMW_DEFAULTS: AdamWConfig = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };

export interface AdamWValues {
  param: string;
  grad: string;
  m: string;
  v: string;
  /** Float scalar learning rate. */
  lr: string;
  /** Float scalar step count t ≥ 1 (after this update). */
  step: string;
}

export function appendAdamW(b: GraphBuilder, x: AdamWValues, cfg: AdamWConfig, outNames?: { param: string; m: string; v: string }): { param: string; m: string; v: string } {
  const c = (v: number, name: string) => b.constFloat([v], [], name);
  const one = c(1, 'adam_one');
  const m1 = b.op('Add', [b.op('Mul', [x.m, c(cfg.beta1, 'beta1')]), b.op('Mul', [x.grad, c(1 - cfg.beta1, 'one_minus_beta1')])], {}, 'adam/m');
  const g2 = b.op('Mul', [x.grad, x.grad], {}, 'adam/g2');
  const v1 = b.op('Add', [b.op('Mul', [x.v, c(cfg.beta2, 'beta2')]), b.op('Mul', [g2, c(1 - cfg.beta2, 'one_minus_beta2')])], {}, 'adam/v');
  // Bias corrections are scalars: fold them into the step size and the denominator.
  const bc1 = b.op('Sub', [one, b.op('Pow', [c(cfg.beta1, 'beta1_pow_base'), x.step])], {}, 'adam/bc1');
  const bc2 = b.op('Sub', [one, b.op('Pow', [c(cfg.beta2, 'beta2_pow_base'), x.step])], {}, 'adam/bc2');
  const stepSize = b.op('Div', [x.lr, bc1], {}, 'adam/step_size');
  const denom = b.op('Add', [b.op('Sqrt', [b.op('Div', [v1, bc2])]), c(cfg.eps, 'adam_eps')], {}, 'adam/denom');
  const update = b.op('Mul', [b.op('Div', [m1, denom]), stepSize], {}, 'adam/update');
  let p = x.param;
  if (cfg.weightDecay > 0) {
    const decay = b.op('Sub', [one, b.op('Mul', [x.lr, c(cfg.weightDecay, 'weight_decay')])], {}, 'adam/decay');
    p = b.op('Mul', [p, decay], {}, 'adam/decayed');
  }
  const p1 = b.op('Sub', [p, update], {}, 'adam/param');
  if (!outNames) return { param: p1, m: m1, v: v1 };
  // Route results to the requested output names.
  b.node('Identity', [p1], {}, { outputs: [outNames.param], name: 'adam/out_param' });
  b.node('Identity', [m1], {}, { outputs: [outNames.m], name: 'adam/out_m' });
  b.node('Identity', [v1], {}, { outputs: [outNames.v], name: 'adam/out_v' });
  return outNames;
}
