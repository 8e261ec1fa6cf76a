/**
 * Float16 graphs (weights, and usually activations, in half precision) are trained in float32:
 * every float16 initializer, Constant value and tensor attribute becomes float32, casts to
 * float16 become casts to float32 (removed later as no-ops), and float16 graph inputs/outputs
 * become float32. The source's weight type is reported so the export can write it back.
 */
import type { Graph } from '../../ir/graph.js';
import { floatTensor, toFloat32, type TensorData } from '../../ir/tensor.js';
import { DataType } from '../../ir/types.js';
import type { NormaliseReport } from '../normalize.js';

export type SourceDtype = 'float32' | 'float16';

function widen(t: TensorData): TensorData {
  return floatTensor(t.name, t.dims, toFloat32(t));
}

/** Converts the graph in place; returns the weight type the source had. */
export function widenFloat16(g: Graph, report: NormaliseReport): SourceDtype {
  let tensors = 0;
  for (const [k, t] of g.initializers)
    if (t.dataType === DataType.FLOAT16) {
      g.initializers.set(k, widen(t));
      tensors++;
    }
  let casts = 0;
  for (const n of g.nodes) {
    for (const [name, a] of Object.entries(n.attrs)) {
      if (a.type === 'tensor' && a.value.dataType === DataType.FLOAT16) {
        n.attrs[name] = { ...a, value: widen(a.value) };
        tensors++;
      }
    }
    if (n.opType === 'Cast' && n.attrs.to?.type === 'int' && n.attrs.to.value === DataType.FLOAT16) {
      n.attrs.to = { ...n.attrs.to, value: DataType.FLOAT };
      casts++;
    }
  }
  let io = 0;
  for (const v of [...g.inputs, ...g.outputs])
    if (v.type?.kind === 'tensor' && v.type.elemType === DataType.FLOAT16) {
      v.type = { ...v.type, elemType: DataType.FLOAT };
      io++;
    }
  if (!tensors && !casts && !io) return 'float32';
  for (const [k, v] of g.valueInfo) if (v.type?.kind === 'tensor' && v.type.elemType === DataType.FLOAT16) g.valueInfo.set(k, { ...v, type: { ...v.type, elemType: DataType.FLOAT } });
  report.notes.push(
    `float16 model: ${tensors} float16 tensor(s)${casts ? `, ${casts} cast(s) to float16` : ''}${io ? `, ${io} float16 graph input/output(s)` : ''} widened to float32 for training (export writes float16 back with --export-dtype float16)`,
  );
  return 'float16';
}
