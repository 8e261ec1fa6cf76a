/**
 * Graphs exported with a fixed batch (batch 1, no dynamic axes) often bake that batch into the
 * target shapes of their Reshapes (ShuffleNet's channel shuffle: [1, 2, C/2, H, W]). A constant
 * target whose leading entry is the fixed batch, reshaping a value whose leading dim is that
 * batch, is rewritten to copy the batch (0) so the graph runs at any batch size. The caller
 * probes again at two batch sizes and keeps the batch fixed if that still fails.
 */
import type { Graph } from '../../ir/graph.js';
import type { ValueShape } from '../../ir/shapes.js';
import { int64Tensor, toNumbers } from '../../ir/tensor.js';

export function freeFixedBatchReshapes(g: Graph, shapes: Map<string, ValueShape>, fixedBatch: number): number {
  let rewritten = 0;
  for (const n of g.nodes) {
    if (n.opType !== 'Reshape' || !n.inputs[1]) continue;
    if (n.attrs.allowzero?.type === 'int' && n.attrs.allowzero.value === 1) continue;
    const target = g.initializers.get(n.inputs[1]);
    const x = shapes.get(n.inputs[0]!)?.dims;
    if (!target || !x || x[0] !== fixedBatch) continue;
    const v = toNumbers(target);
    if (v[0] !== fixedBatch) continue;
    let name = `${n.inputs[1]}_anybatch`;
    for (let k = 1; g.initializers.has(name); k++) name = `${n.inputs[1]}_anybatch${k}`;
    g.initializers.set(name, int64Tensor(name, [v.length], [0, ...v.slice(1)]));
    n.inputs[1] = name;
    rewritten++;
  }
  return rewritten;
}
