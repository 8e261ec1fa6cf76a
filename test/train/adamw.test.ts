import { describe, expect, it } from 'vitest';
import ort from 'onnxruntime-node';
import { Graph, makeModel } from '../../src/ir/graph.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { encodeModel } from '../../src/onnx/io.js';
import { appendAdamW, type AdamWConfig } from '../../src/optim/adamw.js';
import { Rng } from '../../src/util/rng.js';

/** PyTorch's AdamW step (torch.optim.AdamW, amsgrad=False), written out in float64. */
function referenceStep(p: number[], g: number[], m: number[], v: number[], t: number, lr: number, c: AdamWConfig) {
  for (let i = 0; i < p.length; i++) {
    p[i]! *= 1 - lr * c.weightDecay;
    m[i] = c.beta1 * m[i]! + (1 - c.beta1) * g[i]!;
    v[i] = c.beta2 * v[i]! + (1 - c.beta2) * g[i]! * g[i]!;
    const mhat = m[i]! / (1 - c.beta1 ** t);
    const vhat = v[i]! / (1 - c.beta2 ** t);
    p[i]! -= (lr * mhat) / (Math.sqrt(vhat) + c.eps);
  }
}

describe('AdamW graph', () => {
  it.each([0, 0.01])('matches the PyTorch update over 5 steps (weight decay %s)', async (wd) => {
    const cfg: AdamWConfig = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: wd };
    const n = 37;
    const g = new Graph();
    for (const name of ['p', 'g', 'm', 'v']) g.inputs.push({ name, type: { kind: 'tensor', elemType: 1, shape: [n] } });
    for (const name of ['lr', 'step']) g.inputs.push({ name, type: { kind: 'tensor', elemType: 1, shape: [] } });
    const out = appendAdamW(new GraphBuilder(g), { param: 'p', grad: 'g', m: 'm', v: 'v', lr: 'lr', step: 'step' }, cfg);
    g.outputs = [{ name: out.param }, { name: out.m }, { name: out.v }];
    const session = await ort.InferenceSession.create(encodeModel(makeModel(g)));
    const rng = new Rng(3);
    const p = Array.from({ length: n }, () => rng.normal());
    const m = new Array(n).fill(0);
    const v = new Array(n).fill(0);
    let P = Float32Array.from(p);
    let M = new Float32Array(n);
    let V = new Float32Array(n);
    const lr = 1e-2;
    for (let t = 1; t <= 5; t++) {
      const grad = Array.from({ length: n }, () => rng.normal());
      referenceStep(p, grad, m, v, t, lr, cfg);
      const r = await session.run({
        p: new ort.Tensor('float32', P, [n]),
        g: new ort.Tensor('float32', Float32Array.from(grad), [n]),
        m: new ort.Tensor('float32', M, [n]),
        v: new ort.Tensor('float32', V, [n]),
        lr: new ort.Tensor('float32', new Float32Array([lr]), []),
        step: new ort.Tensor('float32', new Float32Array([t]), []),
      });
      P = r[out.param]!.data as Float32Array;
      M = r[out.m]!.data as Float32Array;
      V = r[out.v]!.data as Float32Array;
    }
    // float32 graph against a float64 reference: 1e-5 absolute on O(1) parameters.
    for (let i = 0; i < n; i++) expect(Math.abs(P[i]! - p[i]!)).toBeLessThan(1e-5);
    for (let i = 0; i < n; i++) expect(Math.abs(V[i]! - v[i]!)).toBeLessThan(1e-6);
  });
});
