/** What the trainer needs to know about one SFF block of the imported graph. */
import type { Node } from '../ir/graph.js';
import type { TensorData } from '../ir/tensor.js';

export interface TrainBlock {
  index: number;
  /** Human name: 'stem', 'layer1', 'features.3', … */
  name: string;
  /** Value entering the block (graph input for the first block). */
  input: string;
  /** Value leaving the block (the cut tensor). */
  output: string;
  /** Forward nodes in topological order. */
  nodes: Node[];
  /** Every initializer the nodes read. */
  constants: Map<string, TensorData>;
  /** Float initializers trained by this block (conv/linear weights and biases, BN scale/shift). */
  trainable: string[];
  /** BatchNorm running statistics (updated in training, not by the optimiser). */
  state: string[];
  /** Per-sample input and output dims, e.g. [3, 224, 224] and [64, 56, 56]. */
  inputShape: number[];
  outputShape: number[];
}

/** BatchNormalization nodes and their running-stat initializers. */
export function batchNorms(block: Pick<TrainBlock, 'nodes'>): Node[] {
  return block.nodes.filter((n) => n.opType === 'BatchNormalization');
}

/** Splits a block's float initializers into trainable parameters and BN running statistics. */
export function classifyInitializers(nodes: Node[], constants: Map<string, TensorData>): { trainable: string[]; state: string[] } {
  const state = new Set<string>();
  for (const n of nodes) if (n.opType === 'BatchNormalization') for (const i of n.inputs.slice(3, 5)) state.add(i);
  const trainable: string[] = [];
  const seen = new Set<string>();
  for (const n of nodes)
    for (const [slot, i] of n.inputs.entries()) {
      const t = constants.get(i);
      if (!t || t.dataType !== 1 || state.has(i) || seen.has(i)) continue;
      if (!isTrainableSlot(n, slot, t.dims.reduce((a, d) => a * d, 1))) continue;
      seen.add(i);
      trainable.push(i);
    }
  return { trainable, state: [...state] };
}

/** Weights and biases are trained; constants such as Clip bounds, Pad values or shapes are not. */
function isTrainableSlot(n: Node, slot: number, size: number): boolean {
  switch (n.opType) {
    case 'Conv':
    case 'ConvTranspose':
    case 'Gemm':
      return slot <= 2;
    case 'BatchNormalization':
      return slot === 1 || slot === 2;
    case 'MatMul':
    case 'Add':
    case 'Mul':
    case 'Sub':
      // A float tensor of several values is a learned affine (a Linear's bias, a folded BN);
      // scalars are constants of the formula (hard-swish's 3 and 6).
      return size > 1;
    default:
      return false;
  }
}
