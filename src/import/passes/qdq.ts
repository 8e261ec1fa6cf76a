/**
 * Quantised (QDQ-format) graphs: SFF trains float weights, so
 * - DequantizeLinear of a constant (int8/uint8/int16/uint16/int32 weights and biases, per-tensor
 *   or per-axis) becomes the float initializer it computes;
 * - QuantizeLinear → DequantizeLinear of a constant float weight (fake quantisation) becomes the
 *   dequantised weight;
 * - a QuantizeLinear → DequantizeLinear pair on an activation is stripped (it only simulates int8
 *   rounding), with a note: the fine-tuned model is float, re-quantise the export if needed.
 * Anything else quantised stops with an error naming the node.
 */
import { attrInt } from '../../ir/attrs.js';
import type { Graph, Node } from '../../ir/graph.js';
import { floatTensor, numElements, toFloat32, toNumbers, type TensorData } from '../../ir/tensor.js';
import { DataType } from '../../ir/types.js';
import { ImportError } from '../errors.js';
import type { NormaliseReport } from '../normalize.js';
import { replaceUses } from '../normalize.js';

const QUANT_TYPES: Record<number, [number, number]> = {
  [DataType.INT8]: [-128, 127], [DataType.UINT8]: [0, 255], [DataType.INT16]: [-32768, 32767], [DataType.UINT16]: [0, 65535],
  [DataType.INT32]: [-(2 ** 31), 2 ** 31 - 1],
};

/** Per-element scale and zero point of a (de)quantisation along `axis` (per-tensor when scale is a scalar). */
function perElement(node: Node, x: TensorData, scale: TensorData, zp: TensorData | undefined): (i: number) => [number, number] {
  const s = toFloat32(scale);
  const z = zp ? toNumbers(zp) : new Array<number>(s.length).fill(0);
  if (s.length === 1) return () => [s[0]!, z[0]!];
  const rank = x.dims.length;
  const axis = ((attrInt(node, 'axis', 1) % rank) + rank) % rank;
  if (x.dims[axis] !== s.length)
    throw new ImportError(`${node.opType} '${node.name}': ${s.length} scales for axis ${axis} of size ${x.dims[axis]} (blocked quantisation is not supported); re-export with per-tensor or per-channel quantisation`);
  const inner = numElements(x.dims.slice(axis + 1));
  return (i) => {
    const c = Math.floor(i / inner) % s.length;
    return [s[c]!, z[c]!];
  };
}

function dequantize(node: Node, q: TensorData, scale: TensorData, zp: TensorData | undefined, name: string): TensorData {
  const v = toNumbers(q);
  const at = perElement(node, q, scale, zp);
  return floatTensor(name, q.dims, Float32Array.from(v, (x, i) => {
    const [s, z] = at(i);
    return (x - z) * s;
  }));
}

/** Q then DQ of float values with the same parameters (what a fake-quantised weight holds). */
function fakeQuantize(q: Node, w: TensorData, scale: TensorData, zp: TensorData | undefined, name: string): TensorData {
  const [lo, hi] = QUANT_TYPES[zp?.dataType ?? DataType.UINT8] ?? [0, 255];
  const at = perElement(q, w, scale, zp);
  const x = toFloat32(w);
  const roundEven = (v: number) => (Math.abs(v % 1) === 0.5 ? 2 * Math.round(v / 2) : Math.round(v));
  return floatTensor(name, w.dims, Float32Array.from(x, (v, i) => {
    const [s, z] = at(i);
    return (Math.min(hi, Math.max(lo, roundEven(v / s) + z)) - z) * s;
  }));
}

/** Rewrites QDQ constructs in place (before the op check, which would refuse them). */
export function dequantizeGraph(g: Graph, report: NormaliseReport): void {
  if (!g.nodes.some((n) => n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear')) return;
  const constOf = (v: string | undefined) => (v ? g.initializers.get(v) : undefined);
  const producers = g.producers();
  let weights = 0;
  let activations = 0;
  for (const dq of g.nodes.filter((n) => n.opType === 'DequantizeLinear')) {
    const [x, s, z] = dq.inputs;
    const scale = constOf(s);
    const zp = z ? constOf(z) : undefined;
    if (!scale || (z && !zp)) continue; // dynamic parameters: reported below
    const out = dq.outputs[0]!;
    const q = constOf(x);
    if (q) {
      g.initializers.set(out, dequantize(dq, q, scale, zp, out));
      g.nodes = g.nodes.filter((n) => n !== dq);
      weights++;
      continue;
    }
    const qn = x ? producers.get(x) : undefined;
    if (qn?.opType !== 'QuantizeLinear') continue;
    const w = constOf(qn.inputs[0]);
    if (w) {
      g.initializers.set(out, fakeQuantize(qn, w, scale, zp, out));
      g.nodes = g.nodes.filter((n) => n !== dq);
      weights++;
      continue;
    }
    // Activation fake-quantisation: read the float value instead.
    replaceUses(g, out, qn.inputs[0]!);
    if (g.outputs.some((o) => o.name === out)) continue;
    g.nodes = g.nodes.filter((n) => n !== dq);
    activations++;
  }
  // Quantize nodes whose every reader is gone.
  const read = new Set(g.nodes.flatMap((n) => n.inputs));
  g.nodes = g.nodes.filter((n) => n.opType !== 'QuantizeLinear' || n.outputs.some((o) => read.has(o) || g.outputs.some((x) => x.name === o)));
  const left = g.nodes.filter((n) => n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear');
  if (left.length)
    throw new ImportError(
      `quantised graph: ${left.slice(0, 5).map((n) => `${n.opType} '${n.name}'`).join(', ')}${left.length > 5 ? ` and ${left.length - 5} more` : ''} ` +
      `${left.length > 1 ? 'are' : 'is'} not a constant-weight dequantisation nor a QuantizeLinear→DequantizeLinear pair (int8 kernels or dynamic scales); ` +
      `fine-tune the float model and quantise its export instead`,
    );
  if (weights) report.notes.push(`${weights} quantised constant(s) (DequantizeLinear of stored weights) dequantised to float32 initializers`);
  if (activations)
    report.notes.push(`${activations} activation QuantizeLinear→DequantizeLinear pair(s) stripped: the fine-tuned model is float32; quantise its export again if you need int8`);
}
