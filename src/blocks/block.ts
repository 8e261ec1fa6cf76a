/**
 * One SFF block: a sub-graph of the imported model between two cut tensors. A block's
 * initializers are `trainable` (what the optimiser updates: conv/linear weights and biases,
 * BN scale and shift) or `state` (BatchNorm running statistics, updated in training but not by
 * the optimiser); every stage from the split to the checkpoint uses these two words.
 */
import type { Node } from '../ir/graph.js';
import type { TensorData } from '../ir/tensor.js';

export interface Block {
  index: number;
  /** Human name: 'stem', 'layer1', 'features.3', 'block4', or 'a..b' for merged scopes. */
  name: string;
  /** Value entering the block (the image input for the first block). */
  input: string;
  /** Value leaving the block (the cut tensor). */
  output: string;
  /** Forward nodes in topological order. */
  nodes: Node[];
  /** Float initializers trained by this block. */
  trainable: string[];
  /** BatchNorm running statistics of the block's nodes. */
  state: string[];
}

/** A block as the trainer takes it: with the constants its nodes read and its per-sample shapes. */
export interface TrainBlock extends Block {
  /** Every initializer the nodes read. */
  constants: Map<string, TensorData>;
  /** Per-sample input and output dims, e.g. [3, 224, 224] and [64, 56, 56]. */
  inputShape: number[];
  outputShape: number[];
}
