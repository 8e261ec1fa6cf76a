/**
 * Per-block graphs:
 * - the train step: block forward (BN on batch statistics) → head → SFF loss →
 *   gradients (inside the block only) → AdamW, one session.run per minibatch;
 * - the eval graph: block forward (BN on running statistics) → head;
 * - the forward pieces reused by the exported model.
 */
import { Graph, makeModel, type Model } from '../ir/graph.js';
import { GraphBuilder } from '../ir/builder.js';
import { DataType } from '../ir/types.js';
import { probeShapes } from '../runtime/probe.js';
import { buildGradients, type GradFormulations } from '../autodiff/index.js';
import { bnRunningStatUpdate } from '../autodiff/gradients/BatchNormalization.js';
import { lowerForTarget, type GraphTarget } from '../autodiff/lowering.js';
import type { HeadParam } from '../sff/head.js';
import { appendSmoothedLoss } from '../sff/smoothing.js';
import type { Objective } from '../sff/objective.js';
import { appendAdamW, type AdamWConfig } from '../optim/adamw.js';
import { appendPack, appendUnpack, ParamLayout } from '../blocks/params.js';
import type { TrainBlock } from '../blocks/block.js';
import { appendBlockNodes, OPSET } from '../blocks/graph.js';

/** Fixed names of the per-block graphs' inputs and outputs. */
export const IO = {
  x: 'x',
  labels: 'labels',
  params: 'params',
  m: 'adam_m',
  v: 'adam_v',
  step: 'step',
  lr: 'lr',
  next: 'next',
  loss: 'loss',
  goodness: 'goodness',
  paramsOut: 'params_out',
  mOut: 'adam_m_out',
  vOut: 'adam_v_out',
  stateOut: (name: string) => `${name}__updated`,
} as const;

export interface BlockArtifactsSpec {
  block: TrainBlock;
  objective: Objective;
  classes: number;
  /** Training batch size (train-step graphs have a fixed batch). */
  batchSize: number;
  adamw: AdamWConfig;
  /** PyTorch momentum for BN running statistics (ONNX momentum = 1 − this). */
  bnMomentum?: number;
  /** Gradient formulations where a rule has several (default: the project's; the bench compares others). */
  formulations?: Partial<GradFormulations>;
  /** The execution provider the graph is built for (default 'cpu'): ops it lacks are rewritten. */
  target?: GraphTarget;
  /** Label smoothing ε of the block's loss (default 0, see sff/smoothing.ts). */
  labelSmoothing?: number;
}

/** The parameter layout of a block: its trainables then its head's parameters. */
export function blockLayout(block: TrainBlock, head: HeadParam[]): ParamLayout {
  const layout = new ParamLayout();
  for (const name of block.trainable) layout.add(name, block.constants.get(name)!.dims);
  for (const p of head) layout.add(p.name, p.dims);
  return layout;
}

/** The packed starting parameters of a block: its own weights, then its head's initial values. */
export function initialParams(block: TrainBlock, head: HeadParam[], layout: ParamLayout): Float32Array {
  return layout.pack((name) => {
    const h = head.find((p) => p.name === name);
    if (h) return h.init;
    return new Float32Array(block.constants.get(name)!.raw.slice().buffer);
  });
}

export function headPrefix(block: TrainBlock): string {
  return `sff.block${block.index}`;
}

function tensorInput(g: Graph, name: string, elemType: number, shape: (number | string)[]): void {
  g.inputs.push({ name, type: { kind: 'tensor', elemType, shape } });
}

function tensorOutput(g: Graph, name: string, elemType = DataType.FLOAT, shape?: (number | string)[]): void {
  g.outputs.push({ name, type: { kind: 'tensor', elemType, ...(shape ? { shape } : {}) } });
}

/** Non-trainable constants (shapes, Clip bounds…) stay initializers; trainables and state are inputs. */
function addConstants(g: Graph, block: TrainBlock): void {
  const fed = new Set([...block.trainable, ...block.state]);
  for (const [k, t] of block.constants) if (!fed.has(k)) g.initializers.set(k, t);
}

/** The eval graph: x[N,…], params, BN running stats → next, goodness. Dynamic batch. */
export function buildEvalGraph(block: TrainBlock, objective: Objective, layout: ParamLayout, classes: number, target: GraphTarget = 'cpu'): Model {
  const g = new Graph();
  g.name = `sff_eval_${block.name}`;
  tensorInput(g, IO.x, DataType.FLOAT, ['N', ...block.inputShape]);
  tensorInput(g, IO.params, DataType.FLOAT, [layout.total]);
  for (const s of block.state) tensorInput(g, s, DataType.FLOAT, block.constants.get(s)!.dims);
  addConstants(g, block);
  const b = new GraphBuilder(g, `/sff/block${block.index}`);
  const values = appendUnpack(b, IO.params, layout);
  renameUnpacked(g, values);
  const y = appendBlockNodes(b, block, IO.x, false);
  const out = objective.append(b, y, (n) => n);
  b.node('Identity', [out.next], {}, { outputs: [IO.next], name: 'out/next' });
  b.node('Identity', [out.scores], {}, { outputs: [IO.goodness], name: 'out/goodness' });
  tensorOutput(g, IO.next, DataType.FLOAT, ['N', ...block.outputShape]);
  tensorOutput(g, IO.goodness, DataType.FLOAT, ['N', classes]);
  // Eval graphs hold no training-mode op today; lowering them too keeps any future one covered.
  lowerForTarget(g, target, OPSET, () => undefined);
  g.topoSort();
  return makeModel(g, OPSET);
}

/** Makes each unpacked parameter's value carry the parameter's own name, so block nodes read it unchanged. */
function renameUnpacked(g: Graph, values: Map<string, string>): void {
  for (const [param, value] of values) {
    const producer = g.nodes.find((n) => n.outputs[0] === value)!;
    producer.outputs[0] = param;
  }
}

/**
 * The train step: inputs x[B,…], labels[B], params, adam_m, adam_v, step, lr, BN running stats;
 * outputs next, loss, goodness, params_out, adam_m_out, adam_v_out, updated running stats.
 */
export async function buildTrainStep(spec: BlockArtifactsSpec, layout: ParamLayout): Promise<Model> {
  const { block, objective, batchSize: B } = spec;
  const g = new Graph();
  g.name = `sff_train_${block.name}`;
  tensorInput(g, IO.x, DataType.FLOAT, [B, ...block.inputShape]);
  // A column, as GatherElements reads it: an int64 Unsqueeze would run on the CPU under GPU EPs.
  tensorInput(g, IO.labels, DataType.INT64, [B, 1]);
  tensorInput(g, IO.params, DataType.FLOAT, [layout.total]);
  tensorInput(g, IO.m, DataType.FLOAT, [layout.total]);
  tensorInput(g, IO.v, DataType.FLOAT, [layout.total]);
  tensorInput(g, IO.step, DataType.FLOAT, []);
  tensorInput(g, IO.lr, DataType.FLOAT, []);
  for (const s of block.state) tensorInput(g, s, DataType.FLOAT, block.constants.get(s)!.dims);
  addConstants(g, block);
  const b = new GraphBuilder(g, `/sff/block${block.index}`);
  renameUnpacked(g, appendUnpack(b, IO.params, layout));
  const y = appendBlockNodes(b, block, IO.x, true);
  const out = objective.append(b, y, (n) => n);
  const loss = appendSmoothedLoss(b, out.scores, IO.labels, spec.labelSmoothing ?? 0);

  // Shapes of every forward value at this batch size, for the gradient rules.
  const forward = makeModel(g, OPSET);
  const probeGraph = Object.assign(new Graph(), g, { outputs: [{ name: loss }] });
  probeGraph.topoSort();
  const shapes = await probeShapes({ ...forward, graph: probeGraph });

  for (const n of block.nodes.filter((x) => x.opType === 'BatchNormalization')) {
    const x = n.inputs[0] === block.input ? IO.x : n.inputs[0]!;
    // The update reads the node's momentum: --bn-momentum replaces it here (ONNX's is 1 − PyTorch's).
    const attrs = spec.bnMomentum === undefined ? n.attrs : { ...n.attrs, momentum: { type: 'float' as const, value: 1 - spec.bnMomentum } };
    const [mean, variance] = bnRunningStatUpdate(b, { ...n, attrs, inputs: [x, ...n.inputs.slice(1)] }, shapes.get(x)!.dims, OPSET);
    b.node('Identity', [mean], {}, { outputs: [IO.stateOut(n.inputs[3]!)], name: 'out/running_mean' });
    b.node('Identity', [variance], {}, { outputs: [IO.stateOut(n.inputs[4]!)], name: 'out/running_var' });
  }
  const target = spec.target ?? 'cpu';
  const grads = buildGradients({ graph: g, loss, wrt: layout.entries.map((e) => e.name), shapes, opset: OPSET, prefix: '/grad', block: block.name, formulations: spec.formulations, target });
  const flatGrad = appendPack(new GraphBuilder(g, '/grad'), grads, layout);
  const ob = new GraphBuilder(g, '/adamw');
  appendAdamW(ob, { param: IO.params, grad: flatGrad, m: IO.m, v: IO.v, lr: IO.lr, step: IO.step }, spec.adamw, { param: IO.paramsOut, m: IO.mOut, v: IO.vOut });
  b.node('Identity', [out.next], {}, { outputs: [IO.next], name: 'out/next' });
  b.node('Identity', [out.scores], {}, { outputs: [IO.goodness], name: 'out/goodness' });
  b.node('Identity', [loss], {}, { outputs: [IO.loss], name: 'out/loss' });
  tensorOutput(g, IO.next, DataType.FLOAT, [B, ...block.outputShape]);
  tensorOutput(g, IO.loss, DataType.FLOAT, []);
  tensorOutput(g, IO.goodness, DataType.FLOAT, [B, spec.classes]);
  tensorOutput(g, IO.paramsOut, DataType.FLOAT, [layout.total]);
  tensorOutput(g, IO.mOut, DataType.FLOAT, [layout.total]);
  tensorOutput(g, IO.vOut, DataType.FLOAT, [layout.total]);
  for (const s of block.state) tensorOutput(g, IO.stateOut(s), DataType.FLOAT, block.constants.get(s)!.dims);
  const rankOf = (v: string) => shapes.get(v)?.dims.length ?? (v === IO.x ? block.inputShape.length + 1 : undefined);
  lowerForTarget(g, target, OPSET, rankOf);
  g.topoSort();
  return makeModel(g, OPSET);
}

