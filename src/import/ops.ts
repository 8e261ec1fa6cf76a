/** Which ONNX ops the importer accepts, and what role their inputs play. */
import type { Graph, Node } from '../ir/graph.js';
import { DataType } from '../ir/types.js';
import { numElements } from '../ir/tensor.js';

/**
 * Ops a block may hold and train through: each one needs a gradient rule in `autodiff/gradients/`
 * (test/import/ops.test.ts holds this list against the gradient registry, which sits higher in the
 * pipeline and so cannot be read from here).
 */
export const TRAINED_OPS: readonly string[] = [
  'Conv', 'BatchNormalization', 'Relu', 'Clip', 'HardSigmoid', 'HardSwish', 'Sigmoid', 'Mul', 'Add', 'Sub', 'Div',
  'MaxPool', 'AveragePool', 'GlobalAveragePool', 'ReduceMean', 'Flatten', 'Reshape', 'Gemm', 'MatMul', 'Concat',
  'Split', 'Slice', 'Pad', 'Transpose', 'Squeeze', 'Unsqueeze', 'Identity', 'Dropout', 'LeakyRelu', 'Tanh',
];

/** Ops accepted but never differentiated: folded into initializers, or only in a classifier head (after the feature map). */
export const FORWARD_ONLY_OPS: readonly string[] = ['Constant', 'Softmax', 'LogSoftmax'];

/** Ops every later stage (blocks, autodiff, training graphs) must handle. */
export const SUPPORTED_OPS: ReadonlySet<string> = new Set([...TRAINED_OPS, ...FORWARD_ONLY_OPS]);

/** Shape arithmetic: accepted because it is folded to constants once the input size is known. */
export const SHAPE_OPS: ReadonlySet<string> = new Set(['Shape', 'Gather', 'Cast', 'ConstantOfShape', 'Range', 'Size', 'Equal', 'Where', 'Expand']);

/** Element-wise ops of one tensor (an activation that may trail a block's join). */
export const UNARY_ACTIVATIONS: ReadonlySet<string> = new Set(['Relu', 'Clip', 'HardSigmoid', 'HardSwish', 'Sigmoid']);

/** Ops whose parameters make a "learned layer". */
export const LINEAR_OPS: ReadonlySet<string> = new Set(['Conv', 'Gemm', 'MatMul']);

/**
 * Input slots of `node` that hold trainable parameters, when fed by a float initializer:
 * Conv W,B; Gemm A/B/C; MatMul either operand; BatchNormalization scale, bias (not the running
 * statistics); the constant operand of an Add that adds a bias to a MatMul/Gemm/Conv output.
 */
export function paramSlots(node: Node, producers: Map<string, Node>): number[] {
  switch (node.opType) {
    case 'Conv':
      return [1, 2];
    case 'Gemm':
      return [0, 1, 2];
    case 'MatMul':
      return [0, 1];
    case 'BatchNormalization':
      return [1, 2];
    case 'Add': {
      const [a, b] = node.inputs;
      const pa = a ? producers.get(a) : undefined;
      const pb = b ? producers.get(b) : undefined;
      if (pa && LINEAR_OPS.has(pa.opType)) return [1];
      if (pb && LINEAR_OPS.has(pb.opType)) return [0];
      return [];
    }
    default:
      return [];
  }
}

/** Running statistics of BatchNormalization (state, not trained by the optimiser). */
export function bufferSlots(node: Node): number[] {
  return node.opType === 'BatchNormalization' ? [3, 4] : [];
}

/** Trainable parameter names of a set of nodes (float initializers in parameter slots), in first-use order. */
export function nodeParams(graph: Graph, nodes: Iterable<Node>, producers = graph.producers()): string[] {
  const out = new Set<string>();
  for (const n of nodes)
    for (const s of paramSlots(n, producers)) {
      const name = n.inputs[s];
      const t = name ? graph.initializers.get(name) : undefined;
      if (t && t.dataType === DataType.FLOAT) out.add(name!);
    }
  return [...out];
}

/** BatchNorm running statistics used by a set of nodes. */
export function nodeBuffers(graph: Graph, nodes: Iterable<Node>): string[] {
  const out = new Set<string>();
  for (const n of nodes)
    for (const s of bufferSlots(n)) {
      const name = n.inputs[s];
      if (name && graph.initializers.has(name)) out.add(name);
    }
  return [...out];
}

export function countElements(graph: Graph, names: Iterable<string>): number {
  let c = 0;
  for (const n of names) {
    const t = graph.initializers.get(n);
    if (t) c += numElements(t.dims);
  }
  return c;
}
