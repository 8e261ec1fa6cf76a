/** A block's forward nodes copied into another graph: the train step, the eval graph and the export share them. */
import type { Node } from '../ir/graph.js';
import type { GraphBuilder } from '../ir/builder.js';
import { DataType } from '../ir/types.js';
import { tensorFromNumbers } from '../ir/tensor.js';
import type { TrainBlock } from './block.js';

/** Opset of every graph built from blocks (train step, eval graph, export). */
export const OPSET = 17;

/**
 * Copies the block's nodes into `b.graph`, reading `input` for the block input.
 * BatchNorm nodes are put in training form when `training` (batch statistics;
 * their updated running statistics become outputs named `<stat>__updated`, see train/artifacts.ts).
 * Returns the value holding the block output.
 */
export function appendBlockNodes(b: GraphBuilder, block: TrainBlock, input: string, training: boolean): string {
  const rename = (v: string) => (v === block.input ? input : v);
  for (const n of block.nodes) {
    const copy: Node = { ...n, inputs: n.inputs.map(rename), outputs: [...n.outputs], attrs: { ...n.attrs } };
    if (n.opType === 'BatchNormalization') {
      delete copy.attrs.training_mode;
      copy.outputs = [n.outputs[0]!];
      if (training) {
        // Batch statistics; the running statistics are updated by bnRunningStatUpdate
        // (PyTorch's unbiased variance, which onnxruntime's own outputs do not use).
        copy.attrs.training_mode = { type: 'int', value: 1 };
        // onnxruntime insists on all three outputs in training mode; the last two go unused.
        // Its kernel updates the running-stat inputs in place, so it gets private
        // placeholders rather than the state the update below reads.
        copy.outputs = [n.outputs[0]!, b.unique('bn_running_mean_unused'), b.unique('bn_running_var_unused')];
        const C = block.constants.get(n.inputs[3]!)!.dims;
        copy.inputs[3] = b.constFloat(new Float32Array(C[0]!), C, 'bn_mean_placeholder');
        copy.inputs[4] = b.constFloat(new Float32Array(C[0]!).fill(1), C, 'bn_var_placeholder');
      }
    }
    if (n.opType === 'Dropout' && training) {
      // Training-mode dropout: random mask, kept as an output for the gradient.
      const on = b.unique('dropout_training');
      b.graph.initializers.set(on, tensorFromNumbers(on, DataType.BOOL, [], [1]));
      copy.inputs = [copy.inputs[0]!, copy.inputs[1] ?? '', on];
      copy.outputs = [n.outputs[0]!, b.unique('dropout_mask')];
    }
    b.graph.nodes.push(copy);
  }
  return block.output === block.input ? input : block.output;
}
