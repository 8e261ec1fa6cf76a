/**
 * The arithmetic of a step, from the graphs: multiply-accumulates (MACs) per image of the
 * convolutions and matrix products, which carry nearly all of a CNN's work (normalisation,
 * activations and the goodness' squares are elementwise and left out).
 *
 * A training step costs, per product node with forward cost F: F for the forward, F for the
 * weight gradient when the weight is trained, F for the input gradient when the input depends
 * on something trained. So the first layer of a network — and, under SFF, the first layer of
 * every block, whose input no gradient crosses — skips one F. The aux heads add their conv
 * three times (their input always needs its gradient: the LayerNorm's scale is trained).
 * This is the bound a step's time would follow if every kernel ran at the same speed.
 */
import { attrInt } from '../ir/attrs.js';
import type { Graph, Node } from '../ir/graph.js';
import type { ValueShape } from '../ir/shapes.js';

export interface StepArithmetic {
  /** MACs per image of the forward (inference) pass through the graph. */
  forward: number;
  /** MACs per image of forward + weight gradients + input gradients (the train step). */
  train: number;
}

const prod = (d: readonly number[]) => d.reduce((a, v) => a * v, 1);

/** Forward MACs of one product node (Conv, ConvTranspose, Gemm, MatMul), 0 for anything else. */
export function nodeMacs(node: Node, shapes: ReadonlyMap<string, ValueShape>): number {
  const dims = (v: string | undefined) => (v ? shapes.get(v)?.dims : undefined);
  const y = dims(node.outputs[0]);
  if (!y) return 0;
  switch (node.opType) {
    case 'Conv': {
      const w = dims(node.inputs[1]);
      // Each output element: one dot product over (C_in / group) · kh · kw.
      return w ? prod(y) * prod(w.slice(1)) : 0;
    }
    case 'ConvTranspose': {
      const x = dims(node.inputs[0]);
      const w = dims(node.inputs[1]);
      // Each input element scatters into (C_out / group) · kh · kw outputs.
      return x && w ? prod(x) * prod(w.slice(1)) : 0;
    }
    case 'Gemm': {
      const a = dims(node.inputs[0]);
      const k = a ? (attrInt(node, 'transA', 0) ? a[0] : a[1]) : undefined;
      return k ? prod(y) * k : 0;
    }
    case 'MatMul': {
      const a = dims(node.inputs[0]);
      return a && a.length ? prod(y) * a[a.length - 1]! : 0;
    }
    default:
      return 0;
  }
}

/**
 * Per-image MACs of `graph`'s forward and of a train step that differentiates w.r.t. the
 * `trainable` values. `shapes` are the graph's value shapes at `batch` images.
 */
export function stepArithmetic(graph: Graph, shapes: ReadonlyMap<string, ValueShape>, trainable: ReadonlySet<string>, batch = 1): StepArithmetic {
  // Values that depend on something trained (their gradient is computed in a train step).
  const active = new Set<string>(trainable);
  for (const n of graph.nodes) if (n.inputs.some((i) => i && active.has(i))) for (const o of n.outputs) if (o) active.add(o);
  let forward = 0;
  let train = 0;
  for (const n of graph.nodes) {
    const f = nodeMacs(n, shapes);
    if (!f) continue;
    forward += f;
    train += f;
    const [a, w] = n.inputs;
    if (w && active.has(w)) train += f; // weight gradient (MatMul: the second operand's)
    if (a && active.has(a)) train += f; // input gradient
  }
  return { forward: forward / batch, train: train / batch };
}
