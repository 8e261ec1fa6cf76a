/**
 * Per-target rewrites of a built training or eval graph. The gradient rules and the
 * train-step builder emit standard ONNX; some execution providers lack an op or a mode of
 * one (onnxruntime's WebGPU EP has no BatchNormalization training mode), and onnxruntime
 * then either fails or runs the node on the CPU, copying tensors across every step. Here each
 * such node is replaced, at graph-build time, by an equivalent made of ops the target has.
 * The target is a build option passed down by the caller (one process may build for several).
 */
import type { GraphBuilder } from '../ir/builder.js';
import { GraphBuilder as Builder } from '../ir/builder.js';
import type { Graph, Node } from '../ir/graph.js';
import { attrFloat } from '../ir/attrs.js';
import { bnTrainingForward, isTrainingBN } from './gradients/BatchNormalization.js';
import { reduce } from './helpers.js';
import type { GraphTarget } from './types.js';

export type { GraphTarget } from './types.js';

export const GRAPH_TARGETS: readonly GraphTarget[] = ['cpu', 'webgpu', 'cuda'];

interface LoweringContext {
  /** Names the replacement's nodes after the node it replaces. */
  b: GraphBuilder;
  opset: number;
  /** Static rank of a value, or undefined when unknown. */
  rank: (value: string) => number | undefined;
}

/** A rewrite: appends the replacement's nodes through `b` and returns their outputs (one per node output, '' = unused). */
type Rewrite = (node: Node, ctx: LoweringContext) => string[];

interface Rule {
  /** Why the target needs it, for error messages and docs. */
  reason: string;
  applies: (node: Node, opset: number) => boolean;
  rewrite: Rewrite;
}

const bnTraining: Rule = {
  reason: 'BatchNormalization training mode (batch statistics) is not implemented',
  applies: (node, opset) => node.opType === 'BatchNormalization' && isTrainingBN(node, opset),
  rewrite: (node, ctx) => {
    const x = node.inputs[0]!;
    const rank = ctx.rank(x);
    if (rank === undefined) throw new Error(`lowering BatchNormalization '${node.name}': the rank of its input '${x}' is unknown`);
    const y = bnTrainingForward(ctx.b, x, node.inputs[1]!, node.inputs[2]!, rank, attrFloat(node, 'epsilon', 1e-5), ctx.opset);
    // The running-statistics outputs are never read by the train step (bnRunningStatUpdate computes
    // PyTorch's update); a graph that reads them keeps the node.
    return [y, ...node.outputs.slice(1).map(() => '')];
  },
};

/** onnxruntime's WebGPU EP has no Sum kernel (the gradient builder's accumulation of several contributions). */
const sumToAdds: Rule = {
  reason: 'Sum (variadic) has no kernel: a chain of Add',
  applies: (node) => node.opType === 'Sum' && node.inputs.length > 1,
  rewrite: (node, { b }) => [node.inputs.slice(1).reduce((acc, v) => b.op('Add', [acc, v]), node.inputs[0]!)],
};

/** onnxruntime's WebGPU EP has no LogSoftmax kernel: x − m − log Σ exp(x − m), m the row maximum (no overflow). */
const logSoftmax: Rule = {
  reason: 'LogSoftmax has no kernel: x − max − log Σ exp(x − max)',
  applies: (node) => node.opType === 'LogSoftmax',
  rewrite: (node, { b, opset, rank }) => {
    const x = node.inputs[0]!;
    const r = rank(x);
    const axisAttr = node.attrs.axis?.type === 'int' ? node.attrs.axis.value : -1;
    if (axisAttr < 0 && r === undefined) throw new Error(`lowering LogSoftmax '${node.name}': the rank of its input '${x}' is unknown`);
    const axis = axisAttr < 0 ? axisAttr + r! : axisAttr;
    const shifted = b.op('Sub', [x, reduce(b, 'ReduceMax', x, [axis], true, opset)]);
    const logSum = b.op('Log', [reduce(b, 'ReduceSum', b.op('Exp', [shifted]), [axis], true, opset)]);
    return [b.op('Sub', [shifted, logSum])];
  },
};

const RULES: Record<GraphTarget, Rule[]> = {
  cpu: [],
  webgpu: [bnTraining, sumToAdds, logSoftmax],
  cuda: [bnTraining],
};

/** The rewrites a target needs, as `op: reason` lines (for `inspect` and the README). */
export function loweringsFor(target: GraphTarget): string[] {
  return RULES[target].map((r) => r.reason);
}

/**
 * Replaces, in place, every node the target cannot run by its equivalent; returns how many
 * nodes were replaced. `rank` gives a value's static rank (the train-step builder's probed shapes).
 * The graph must be topologically sortable afterwards; the caller sorts it.
 */
export function lowerForTarget(g: Graph, target: GraphTarget, opset: number, rank: (value: string) => number | undefined): number {
  const rules = RULES[target];
  if (!rules.length) return 0;
  const consumers = new Set(g.nodes.flatMap((n) => n.inputs));
  for (const o of g.outputs) consumers.add(o.name);
  let replaced = 0;
  const original = g.nodes;
  g.nodes = [];
  for (const node of original) {
    const rule = rules.find((r) => r.applies(node, opset));
    const extraOutputsRead = node.outputs.slice(1).some((o) => o && consumers.has(o));
    if (!rule || extraOutputsRead) {
      g.nodes.push(node);
      continue;
    }
    const start = g.nodes.length;
    const outs = rule.rewrite(node, { b: new Builder(g, node.name), opset, rank });
    // The replacement's result takes the node's output name, so consumers read it unchanged.
    outs.forEach((v, i) => {
      const want = node.outputs[i];
      if (!v || !want) return;
      const producer = g.nodes.slice(start).find((n) => n.outputs.includes(v));
      if (!producer) throw new Error(`lowering '${node.name}': its replacement does not produce '${v}'`);
      producer.outputs[producer.outputs.indexOf(v)] = want;
    });
    replaced++;
  }
  if (replaced) {
    // What only the replaced nodes read (e.g. BN's running-statistic placeholders) goes too.
    const read = new Set(g.nodes.flatMap((n) => n.inputs));
    for (const o of g.outputs) read.add(o.name);
    for (const name of [...g.initializers.keys()]) if (!read.has(name)) g.initializers.delete(name);
  }
  return replaced;
}
