/**
 * Folds inference-form BatchNormalization into the Conv that feeds it (as an eval-mode export
 * with constant folding does): W'[o] = W[o]·s[o], b'[o] = (b[o] − mean[o])·s[o] + beta[o],
 * s = gamma / √(var + eps). The BN node and its now-unused initializers disappear; the Conv
 * gets a bias `<conv path>.bias` if it had none.
 */
import { attrFloat, attrInt } from '../ir/attrs.js';
import type { Graph, Model } from '../ir/graph.js';
import { floatTensor, toFloat32 } from '../ir/tensor.js';
import { DataType } from '../ir/types.js';

/** Folds every Conv → BatchNormalization pair it can; returns how many were folded. */
export function foldBatchNorms(model: Model): number {
  const g = model.graph;
  const outputs = new Set(g.outputs.map((o) => o.name));
  let folded = 0;
  for (const bn of [...g.nodes]) {
    if (bn.opType !== 'BatchNormalization' || bn.domain !== '') continue;
    if (attrInt(bn, 'training_mode', 0) !== 0 || bn.outputs.filter(Boolean).length !== 1) continue;
    const producers = g.producers();
    const consumers = g.consumers();
    const conv = producers.get(bn.inputs[0]!);
    if (!conv || conv.opType !== 'Conv' || conv.domain !== '') continue;
    const convOut = conv.outputs[0]!;
    if ((consumers.get(convOut) ?? []).length !== 1 || outputs.has(convOut)) continue;
    const [, gammaN, betaN, meanN, varN] = bn.inputs;
    const wN = conv.inputs[1]!;
    const tensors = [gammaN, betaN, meanN, varN, wN].map((n) => (n ? g.initializers.get(n) : undefined));
    if (tensors.some((t) => !t || t.dataType !== DataType.FLOAT)) continue;
    const biasIn = conv.inputs[2];
    const biasT = biasIn ? g.initializers.get(biasIn) : undefined;
    if (biasIn && (!biasT || biasT.dataType !== DataType.FLOAT)) continue;

    const [gamma, beta, mean, variance, w] = tensors.map((t) => toFloat32(t!)) as Float32Array[];
    const eps = attrFloat(bn, 'epsilon', 1e-5);
    const cout = g.initializers.get(wN)!.dims[0]!;
    const per = w!.length / cout;
    const newW = new Float32Array(w!.length);
    const newB = new Float32Array(cout);
    const oldB = biasT ? toFloat32(biasT) : new Float32Array(cout);
    for (let o = 0; o < cout; o++) {
      // Compute in float64, round once.
      const s = gamma![o]! / Math.sqrt(variance![o]! + eps);
      for (let i = 0; i < per; i++) newW[o * per + i] = w![o * per + i]! * s;
      newB[o] = (oldB[o]! - mean![o]!) * s + beta![o]!;
    }
    // Shared weights would change other users too: give the folded conv its own copies if so.
    const shared = (n: string) => (consumers.get(n) ?? []).length > 1;
    const wOut = shared(wN) ? unusedName(g, `${wN}_folded`) : wN;
    const bOut = biasIn && !shared(biasIn) ? biasIn : unusedName(g, wN.endsWith('.weight') ? wN.replace(/\.weight$/, '.bias') : `${wN}_bias`);
    g.initializers.set(wOut, floatTensor(wOut, g.initializers.get(wN)!.dims, newW));
    g.initializers.set(bOut, floatTensor(bOut, [cout], newB));
    conv.inputs[1] = wOut;
    conv.inputs[2] = bOut;

    // Drop the BN: its readers read the conv; a BN graph output is written by the conv instead.
    const bnOut = bn.outputs.find(Boolean)!;
    if (outputs.has(bnOut)) conv.outputs[0] = bnOut;
    else for (const n of g.nodes) n.inputs = n.inputs.map((i) => (i === bnOut ? convOut : i));
    g.nodes.splice(g.nodes.indexOf(bn), 1);
    g.valueInfo.delete(bnOut);
    const stillUsed = g.consumers();
    for (const n of bn.inputs.slice(1)) if (n && !stillUsed.has(n) && !outputs.has(n)) g.initializers.delete(n);
    folded++;
  }
  return folded;
}

function unusedName(g: Graph, base: string): string {
  const taken = g.allNames();
  if (!taken.has(base)) return base;
  let k = 1;
  while (taken.has(`${base}_${k}`)) k++;
  return `${base}_${k}`;
}
