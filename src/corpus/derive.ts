/**
 * Derived copies of corpus graphs, for what PyTorch 1.13 does not write itself but users'
 * tool chains do: float16 conversion (all-float16, and float16 weights with float32 I/O
 * through Casts), external data, QDQ quantisation (weights only, and weights plus
 * activations) and an opset-21 re-labelling. Each copy is added to the corpus manifest with
 * `derivedFrom`.
 *
 *   node dist/corpus/derive.js [DIR]     # default fixtures/corpus; needs the exported graphs
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { attrInts } from '../ir/attrs.js';
import type { Graph, Model, Node } from '../ir/graph.js';
import { floatTensor, halfTensor, int64Tensor, numElements, toFloat32, type TensorData } from '../ir/tensor.js';
import { loadModel, saveModel } from '../onnx/io.js';
import { DataType } from '../ir/types.js';

export interface CorpusEntry {
  file: string;
  arch: string;
  family: string;
  mode: 'eval' | 'train';
  variant: string;
  size: [number, number];
  classes: number;
  opset: number;
  dynamicBatch: boolean;
  dynamicHW: boolean;
  initializersAsInputs?: boolean;
  /** Set when PyTorch itself could not export this combination (no file). */
  exportError?: string;
  /** For derived copies: the graph they were made from. */
  derivedFrom?: string;
}

export interface CorpusManifest {
  generator: string;
  note?: string;
  graphs: CorpusEntry[];
}

export function readManifest(dir: string): CorpusManifest {
  return JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as CorpusManifest;
}

const HALF = DataType.FLOAT16;

/** Every float initializer, Constant and Cast target in float16; graph I/O float16 unless `keepIo` (then Casts at the edges). */
export function toFloat16(model: Model, keepIo: boolean): void {
  const g = model.graph;
  for (const [k, t] of g.initializers) if (t.dataType === DataType.FLOAT) g.initializers.set(k, halfTensor(k, t.dims, toFloat32(t)));
  for (const n of g.nodes) {
    for (const [name, a] of Object.entries(n.attrs))
      if (a.type === 'tensor' && a.value.dataType === DataType.FLOAT) n.attrs[name] = { type: 'tensor', value: halfTensor(a.value.name, a.value.dims, toFloat32(a.value)) };
    if (n.opType === 'Cast' && n.attrs.to?.type === 'int' && n.attrs.to.value === DataType.FLOAT) n.attrs.to = { type: 'int', value: HALF };
  }
  g.valueInfo.clear();
  const retype = (v: Graph['inputs'][number]) => {
    if (v.type?.kind === 'tensor' && v.type.elemType === DataType.FLOAT) v.type = { ...v.type, elemType: HALF };
  };
  if (!keepIo) {
    g.inputs.forEach(retype);
    g.outputs.forEach(retype);
    return;
  }
  // float32 in and out: Cast the image to float16 and the logits back, as converters' keep_io_types does.
  const cast = (name: string, input: string, output: string, to: number): Node => ({ name, opType: 'Cast', domain: '', inputs: [input], outputs: [output], attrs: { to: { type: 'int', value: to } } });
  for (const i of g.feedInputs()) {
    const half = `${i.name}_fp16`;
    for (const n of g.nodes) n.inputs = n.inputs.map((v) => (v === i.name ? half : v));
    g.nodes.unshift(cast(`${i.name}_to_fp16`, i.name, half, HALF));
  }
  for (const o of g.outputs) {
    const half = `${o.name}_fp16`;
    for (const n of g.nodes) n.outputs = n.outputs.map((v) => (v === o.name ? half : v));
    for (const n of g.nodes) n.inputs = n.inputs.map((v) => (v === o.name ? half : v));
    g.nodes.push(cast(`${o.name}_to_fp32`, half, o.name, DataType.FLOAT));
  }
}

function int8PerChannel(name: string, w: TensorData): { q: TensorData; scale: TensorData; zp: TensorData } {
  const x = toFloat32(w);
  const c = w.dims[0]!;
  const inner = numElements(w.dims) / c;
  const scales = new Float32Array(c);
  const q = new Int8Array(x.length);
  for (let k = 0; k < c; k++) {
    let m = 0;
    for (let i = 0; i < inner; i++) m = Math.max(m, Math.abs(x[k * inner + i]!));
    const s = m > 0 ? m / 127 : 1;
    scales[k] = s;
    for (let i = 0; i < inner; i++) q[k * inner + i] = Math.max(-127, Math.min(127, Math.round(x[k * inner + i]! / s)));
  }
  return {
    q: { name, dataType: DataType.INT8, dims: [...w.dims], raw: new Uint8Array(q.buffer) },
    scale: floatTensor(`${name}_scale`, [c], scales),
    zp: { name: `${name}_zp`, dataType: DataType.INT8, dims: [c], raw: new Uint8Array(c) },
  };
}

/**
 * QDQ format as quantisation tools write it: Conv weights int8 per output channel and Gemm
 * weights int8 per tensor, each read through DequantizeLinear; with `activations`, every Relu
 * output also passes through a uint8 QuantizeLinear→DequantizeLinear pair.
 */
export function toQdq(model: Model, activations: boolean): void {
  const g = model.graph;
  const added: Node[] = [];
  const dq = (name: string, inputs: string[], output: string, axis?: number): Node => ({
    name, opType: 'DequantizeLinear', domain: '', inputs, outputs: [output], attrs: axis === undefined ? {} : { axis: { type: 'int', value: axis } },
  });
  for (const n of g.nodes) {
    if (n.opType !== 'Conv' && n.opType !== 'Gemm') continue;
    const wName = n.inputs[1]!;
    const w = g.initializers.get(wName);
    if (!w || w.dataType !== DataType.FLOAT) continue;
    const perTensor = n.opType === 'Gemm';
    const { q, scale, zp } = int8PerChannel(`${wName}_quantized`, perTensor ? { ...w, dims: [1, numElements(w.dims)] } : w);
    if (perTensor) {
      q.dims = [...w.dims];
      scale.dims = [];
      zp.dims = [];
    }
    for (const t of [q, scale, zp]) g.initializers.set(t.name, t);
    const out = `${wName}_dequantized`;
    added.push(dq(`${n.name}_weight_DequantizeLinear`, [q.name, scale.name, zp.name], out, perTensor ? undefined : 0));
    n.inputs[1] = out;
    if (!g.nodes.some((x) => x.inputs.includes(wName))) g.initializers.delete(wName);
  }
  if (activations) {
    g.initializers.set('act_scale', floatTensor('act_scale', [], [0.05]));
    g.initializers.set('act_zp', { name: 'act_zp', dataType: DataType.UINT8, dims: [], raw: new Uint8Array([0]) });
    for (const n of [...g.nodes]) {
      if (n.opType !== 'Relu') continue;
      const y = n.outputs[0]!;
      const raw = `${y}_float`;
      n.outputs[0] = raw;
      g.nodes.push(
        { name: `${n.name}_QuantizeLinear`, opType: 'QuantizeLinear', domain: '', inputs: [raw, 'act_scale', 'act_zp'], outputs: [`${y}_quantized`], attrs: {} },
        dq(`${n.name}_DequantizeLinear`, [`${y}_quantized`, 'act_scale', 'act_zp'], y),
      );
    }
  }
  g.nodes.unshift(...added);
  g.topoSort();
  g.valueInfo.clear();
}

/** Opset 21 as a newer exporter writes it: ReduceMean axes as an input (opset ≥ 18), IR version 10. */
export function toOpset21(model: Model): void {
  const g = model.graph;
  let k = 0;
  for (const n of g.nodes) {
    if (n.opType === 'ReduceMean' && n.attrs.axes) {
      const name = `reducemean_axes_${k++}`;
      g.initializers.set(name, int64Tensor(name, [attrInts(n, 'axes').length], attrInts(n, 'axes')));
      n.inputs = [n.inputs[0]!, name];
      delete n.attrs.axes;
    }
  }
  model.opsetImports = model.opsetImports.map((o) => (o.domain === '' || o.domain === 'ai.onnx' ? { ...o, version: 21 } : o));
  model.irVersion = 10;
}

interface Derivation {
  from: string;
  suffix: string;
  apply: (m: Model) => void;
  opset?: number;
  external?: boolean;
}

export const DERIVATIONS: Derivation[] = [
  { from: 'resnet18_eval_op17_dyn', suffix: 'fp16io32', apply: (m) => toFloat16(m, true) },
  { from: 'mobilenet_v3_small_train_op13_batch', suffix: 'fp16', apply: (m) => toFloat16(m, false) },
  { from: 'resnet18_eval_op13_batch', suffix: 'qdqweights', apply: (m) => toQdq(m, false) },
  { from: 'resnet18_eval_op13_batch', suffix: 'qdq', apply: (m) => toQdq(m, true) },
  { from: 'mobilenet_v3_small_eval_op17_dyn', suffix: 'op21', apply: toOpset21, opset: 21 },
  { from: 'efficientnet_b0_eval_op17_dyn', suffix: 'op21', apply: toOpset21, opset: 21 },
  { from: 'resnet50_eval_op17_dyn', suffix: 'extdata', apply: () => {}, external: true },
];

/** Writes every derivation whose source exists; returns the manifest entries of the copies. */
export function deriveCorpus(dir: string, log: (s: string) => void = console.log): CorpusEntry[] {
  const manifest = readManifest(dir);
  const byName = new Map(manifest.graphs.map((e) => [e.file.replace(/\.onnx$/, ''), e]));
  const out: CorpusEntry[] = [];
  for (const d of DERIVATIONS) {
    const base = byName.get(d.from);
    if (!base || base.exportError || !existsSync(join(dir, base.file))) {
      log(`skip    ${d.from}_${d.suffix} (no ${d.from}.onnx)`);
      continue;
    }
    const file = `${d.from}_${d.suffix}.onnx`;
    const path = join(dir, file);
    if (!existsSync(path)) {
      const m = loadModel(join(dir, base.file));
      d.apply(m);
      saveModel(m, path, d.external ? { externalData: {} } : {});
      log(`derive  ${path}`);
    } else log(`ok      ${path}`);
    out.push({ ...base, file, variant: `${base.variant}_${d.suffix}`, ...(d.opset ? { opset: d.opset } : {}), derivedFrom: base.file });
  }
  const kept = manifest.graphs.filter((e) => !e.derivedFrom);
  manifest.graphs = [...kept, ...out];
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 1));
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = resolve(process.argv[2] ?? 'fixtures/corpus');
  const made = deriveCorpus(dir);
  console.log(`${made.length} derived graphs in ${join(dir, 'manifest.json')}`);
}
