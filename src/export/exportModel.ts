/**
 * The deployable model: the original input, the trained blocks with
 * their norms and aux heads, BN in inference form, output `scores` [N,J] = the
 * (weighted) mean goodness over the ensemble's blocks (or its softmax), plus one
 * goodness output per exported head, and metadata for classes and preprocessing.
 *
 * By default only what `scores` needs is kept: the heads of blocks with a non-zero
 * ensemble weight, and no block after the last of them (with `last:4` on a 16-block
 * network, 12 heads fewer to run). `heads: 'all'` keeps every block and head.
 */
import { Graph, makeModel, type Model, type Node } from '../ir/graph.js';
import { GraphBuilder } from '../ir/builder.js';
import { floatTensor } from '../ir/tensor.js';
import { DataType } from '../ir/types.js';
import { removeDeadCode } from '../import/normalize.js';
import { float16Tensor, toFloat32 } from '../ir/tensor.js';
import type { Objective } from '../sff/objective.js';
import { appendBlockNodes, OPSET } from '../blocks/graph.js';
import type { ParamLayout } from '../blocks/params.js';
import type { TrainBlock } from '../blocks/block.js';

export interface ExportBlock {
  block: TrainBlock;
  objective: Objective;
  layout: ParamLayout;
  params: Float32Array;
  state: Map<string, Float32Array>;
}

export interface ExportSpec {
  inputName: string;
  /** Per-sample input dims [C,H,W]. */
  inputShape: number[];
  blocks: ExportBlock[];
  /** Ensemble weight per block (0 = not in `scores`). */
  weights: number[];
  classes: string[];
  preprocess: { size: [number, number]; mean: number[]; std: number[] };
  extraMetadata?: Record<string, string>;
  /** 'ensemble' (default): only the heads with a non-zero weight; 'all': every head. */
  heads?: 'ensemble' | 'all';
  /** 'logits' (default): `scores` is the weighted goodness; 'probabilities': its softmax over classes. */
  scores?: 'logits' | 'probabilities';
  /** 'float16': weights stored in half precision and cast to float32 in the graph (half the file; float32 arithmetic). */
  dtype?: 'float32' | 'float16';
}

/** The goodness output names kept by an export with these weights and head choice. */
export function exportedHeads(blocks: TrainBlock[], weights: number[], heads: 'ensemble' | 'all' = 'ensemble'): string[] {
  return blocks.flatMap((b, k) => (heads === 'all' || weights[k]! > 0 ? [goodnessOutputName(b)] : []));
}

export function goodnessOutputName(block: TrainBlock): string {
  return `goodness_${block.name.replace(/[^A-Za-z0-9_.]/g, '_')}`;
}

export function buildExportModel(spec: ExportSpec): Model {
  const g = new Graph();
  g.name = 'sff_model';
  const J = spec.classes.length;
  g.inputs.push({ name: spec.inputName, type: { kind: 'tensor', elemType: DataType.FLOAT, shape: ['N', ...spec.inputShape] } });
  let x = spec.inputName;
  const goodness: string[] = [];
  for (const eb of spec.blocks) {
    const { block, layout } = eb;
    for (const [k, t] of block.constants) if (!block.trainable.includes(k) && !block.state.includes(k)) g.initializers.set(k, t);
    for (const e of layout.entries) g.initializers.set(e.name, floatTensor(e.name, e.dims, eb.params.subarray(e.offset, e.offset + e.size)));
    for (const [k, data] of eb.state) g.initializers.set(k, floatTensor(k, block.constants.get(k)!.dims, data));
    const b = new GraphBuilder(g, `/sff/block${block.index}`);
    const y = appendBlockNodes(b, block, x, false);
    const out = eb.objective.append(b, y, (n) => n);
    const name = goodnessOutputName(block);
    b.node('Identity', [out.scores], {}, { outputs: [name], name: 'goodness_out' });
    goodness.push(name);
    x = out.next;
  }
  const b = new GraphBuilder(g, '/sff/ensemble');
  const total = spec.weights.reduce((a, w) => a + w, 0);
  if (total <= 0) throw new Error('ensemble weights are all zero');
  const terms = goodness
    .map((gd, k) => ({ gd, w: spec.weights[k]! / total }))
    .filter((t) => t.w > 0)
    .map((t) => (t.w === 1 ? t.gd : b.op('Mul', [t.gd, b.constFloat([t.w], [], 'weight')], {}, 'weighted')));
  if (spec.scores === 'probabilities') {
    const logits = b.op(terms.length === 1 ? 'Identity' : 'Sum', terms, {}, 'logits');
    b.node('Softmax', [logits], { axis: { type: 'int', value: -1 } }, { outputs: ['scores'], name: 'scores' });
  } else b.node(terms.length === 1 ? 'Identity' : 'Sum', terms, {}, { outputs: ['scores'], name: 'scores' });
  const kept = exportedHeads(spec.blocks.map((eb) => eb.block), spec.weights, spec.heads);
  g.outputs = [
    { name: 'scores', type: { kind: 'tensor', elemType: DataType.FLOAT, shape: ['N', J] } },
    ...kept.map((name) => ({ name, type: { kind: 'tensor' as const, elemType: DataType.FLOAT, shape: ['N', J] } })),
  ];
  // Drops the heads nothing reads and every block after the last one `scores` needs.
  removeDeadCode(g);
  if (spec.dtype === 'float16') storeWeightsAsFloat16(g);
  g.topoSort();
  const model = makeModel(g, OPSET);
  model.metadata.push({ key: 'sff.classes', value: JSON.stringify(spec.classes) });
  model.metadata.push({ key: 'sff.preprocess', value: JSON.stringify(spec.preprocess) });
  model.metadata.push({
    key: 'sff.blocks',
    value: JSON.stringify(spec.blocks.map((eb, k) => ({ name: eb.block.name, ...(kept.includes(goodness[k]!) ? { output: goodness[k] } : {}), weight: spec.weights[k] }))),
  });
  model.metadata.push({ key: 'sff.scores', value: spec.scores ?? 'logits' });
  for (const [k, v] of Object.entries(spec.extraMetadata ?? {})) model.metadata.push({ key: k, value: v });
  return model;
}


/**
 * Replaces each float32 weight (initializers of 16 or more values) by a float16 initializer and a
 * Cast back to float32, so the file is half the size while every op still computes in float32
 * (onnxruntime's CPU kernels for most ops exist in float32 only).
 */
function storeWeightsAsFloat16(g: Graph): void {
  const casts: Node[] = [];
  for (const [name, t] of [...g.initializers]) {
    if (t.dataType !== DataType.FLOAT || t.dims.reduce((a, d) => a * d, 1) < 16) continue;
    const half = `${name}__float16`;
    g.initializers.delete(name);
    g.initializers.set(half, float16Tensor(half, t.dims, toFloat32(t)));
    casts.push({ opType: 'Cast', domain: '', name: `/sff/float16/${name}`, inputs: [half], outputs: [name], attrs: { to: { type: 'int', value: DataType.FLOAT } } });
  }
  g.nodes.unshift(...casts);
}
