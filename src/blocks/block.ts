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
