/**
 * The deployable model: the original input, the trained blocks with
 * their norms and aux heads, BN in inference form, output `scores` [N,J] = the
 * (weighted) mean goodness over blocks, plus one goodness output per block, and
 * metadata for classes and preprocessing.
 */
import { Graph, makeModel, type Model } from '../ir/graph.js';
import { GraphBuilder } from '../ir/builder.js';
import { floatTensor } from '../ir/tensor.js';
import { DataType } from '../ir/types.js';
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
  b.node(terms.length === 1 ? 'Identity' : 'Sum', terms, {}, { outputs: ['scores'], name: 'scores' });
  g.outputs = [
    { name: 'scores', type: { kind: 'tensor', elemType: DataType.FLOAT, shape: ['N', J] } },
    ...goodness.map((name) => ({ name, type: { kind: 'tensor' as const, elemType: DataType.FLOAT, shape: ['N', J] } })),
  ];
  g.topoSort();
  const model = makeModel(g, OPSET);
  model.metadata.push({ key: 'sff.classes', value: JSON.stringify(spec.classes) });
  model.metadata.push({ key: 'sff.preprocess', value: JSON.stringify(spec.preprocess) });
  model.metadata.push({ key: 'sff.blocks', value: JSON.stringify(spec.blocks.map((eb, k) => ({ name: eb.block.name, output: goodness[k], weight: spec.weights[k] }))) });
  for (const [k, v] of Object.entries(spec.extraMetadata ?? {})) model.metadata.push({ key: k, value: v });
  return model;
}

