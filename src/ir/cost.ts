/**
 * Compute and memory estimates of a set of nodes from their probed shapes: multiply-accumulates
 * of the linear ops (Conv, Gemm, MatMul; element-wise ops are not counted, as is customary) and
 * the bytes of the activations the nodes produce at a given batch size.
 */
import type { Graph, Node } from './graph.js';
import type { ValueShape } from './shapes.js';
import { bytesPerElement, numElements } from './tensor.js';

/** Per-block compute and memory. */
export interface BlockCost {
  paramCount: number;
  /** Multiply-accumulates per image (Conv, Gemm, MatMul). */
  macs: number;
  /** Bytes of the values the block computes, at the report's batch size (what one training step keeps). */
  activationBytes: number;
}

/** Multiply-accumulates of one node per sample (shapes probed at batch 1). */
export function nodeMacs(node: Node, shapes: Map<string, ValueShape>, graph: Graph): number {
  const dimsOf = (v: string | undefined) => (v ? (shapes.get(v)?.dims ?? graph.initializers.get(v)?.dims) : undefined);
  const out = dimsOf(node.outputs[0]);
  if (!out) return 0;
  switch (node.opType) {
    case 'Conv':
    case 'ConvTranspose': {
      const w = dimsOf(node.inputs[1]);
      if (!w) return 0;
      // Each output element of Conv sums Cin/group × kernel products: W is [Cout, Cin/group, k…].
      const perOutput = numElements(w.slice(1));
      // ConvTranspose: each input element scatters into Cout/group × kernel outputs (W is [Cin, Cout/group, k…]).
      return node.opType === 'Conv' ? numElements(out) * perOutput : numElements(dimsOf(node.inputs[0]) ?? []) * perOutput;
    }
    case 'Gemm': {
      const a = dimsOf(node.inputs[0]);
      const transA = node.attrs.transA?.type === 'int' && node.attrs.transA.value === 1;
      if (!a || a.length !== 2) return 0;
      return numElements(out) * (transA ? a[0]! : a[1]!);
    }
    case 'MatMul': {
      const a = dimsOf(node.inputs[0]);
      if (!a?.length) return 0;
      return numElements(out) * a[a.length - 1]!;
    }
    default:
      return 0;
  }
}

/** Total multiply-accumulates of `nodes` per sample. */
export function macsOf(nodes: Iterable<Node>, shapes: Map<string, ValueShape>, graph: Graph): number {
  let m = 0;
  for (const n of nodes) m += nodeMacs(n, shapes, graph);
  return m;
}

/**
 * Bytes of the values `nodes` produce at batch `batch` (every output of every node: what a
 * training step keeps for the backward pass, before any reuse). Values whose first dim is not
 * the batch (shape arithmetic) count once.
 */
export function activationBytes(nodes: Iterable<Node>, shapes: Map<string, ValueShape>, batch: number): number {
  let b = 0;
  for (const n of nodes)
    for (const o of n.outputs) {
      const s = o ? shapes.get(o) : undefined;
      if (!s) continue;
      const perSample = s.dims.length > 0 && s.dims[0] === 1 ? batch : 1;
      let size = 4;
      try {
        size = bytesPerElement(s.elemType);
      } catch {
        // strings and other variable-size types: counted as 4 bytes, they never occur in image models
      }
      b += numElements(s.dims) * perSample * size;
    }
  return b;
}
