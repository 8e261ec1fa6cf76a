/**
 * Reverse-mode gradient construction over the graph IR, with standard ONNX ops
 * only: the backward ops are appended to the same graph, so one session runs
 * forward and backward, on any ONNX runtime.
 */
import { GraphBuilder } from '../ir/builder.js';
import { outerScopeReads, topologicalOrder, type Graph, type Node } from '../ir/graph.js';
import type { ValueShape } from '../ir/shapes.js';
import { numElements, toNumbers, type TensorData } from '../ir/tensor.js';
import { DataType } from '../ir/types.js';
import { isFloatType, zeros } from './helpers.js';
import { gradientRules } from './registry.js';
import { NoGradientRuleError, type GradContext, type GradRule } from './types.js';

export interface BuildGradientsRequest {
  /** Graph holding the forward nodes; the backward nodes are appended to it. */
  graph: Graph;
  /** The (scalar) loss value; its seed gradient is 1 everywhere. */
  loss: string;
  /** Values (normally trainable initializers) whose gradients are wanted. */
  wrt: string[];
  /** Static shape and element type of every value (see `probeShapes`). */
  shapes: Map<string, ValueShape>;
  /** ai.onnx opset the graph is built for (default 17). */
  opset?: number;
  /** Name prefix of the backward nodes and values (default '/grad'). */
  prefix?: string;
  /** Block name, for error messages. */
  block?: string;
  /** Known constant values (e.g. folded shape arithmetic), by value name. */
  constants?: ReadonlyMap<string, number[] | TensorData>;
  /** Rules to use instead of the project's registry (tests, extensions). */
  rules?: Record<string, GradRule>;
}

/**
 * Ops whose outputs carry no gradient even when an input does (piecewise
 * constant functions, comparisons, shape queries, random generators).
 * Integer/bool outputs are skipped anyway by their element type.
 */
export const NON_DIFFERENTIABLE_OPS = new Set([
  'Shape', 'Size', 'ArgMax', 'ArgMin', 'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'Not', 'And',
  'Or', 'Xor', 'IsNaN', 'IsInf', 'NonZero', 'Floor', 'Ceil', 'Round', 'Sign', 'RandomNormalLike', 'RandomUniformLike',
  'RandomNormal', 'RandomUniform', 'Bernoulli', 'Multinomial', 'EyeLike', 'ConstantOfShape', 'Constant', 'Range',
]);

/** Value name without a leading '/', for readable gradient names under the prefix. */
function stem(v: string): string {
  return v.replace(/^\/+/, '') || 'value';
}

/**
 * Appends to `req.graph` the ops computing d(loss)/d(w) for every w in `wrt`;
 * returns w → gradient value name (named `<prefix>/<w>` where possible).
 */
export function buildGradients(req: BuildGradientsRequest): Map<string, string> {
  const { graph, loss, wrt, shapes } = req;
  const opset = req.opset ?? 17;
  const rules = req.rules ?? gradientRules;
  const b = new GraphBuilder(graph, req.prefix ?? '/grad');

  const elemType = (v: string): number | undefined => shapes.get(v)?.elemType ?? graph.tensorType(v)?.elemType;
  const shape = (v: string): number[] => {
    const s = shapes.get(v)?.dims ?? graph.tensorType(v)?.shape;
    if (!s || !s.every((d): d is number => typeof d === 'number' && d >= 0))
      throw new Error(`gradient builder: no static shape for value '${v}'${req.block ? ` in block ${req.block}` : ''}; probe shapes with a fixed batch size first`);
    return [...s];
  };

  const producers = graph.producers();
  const constCache = new Map<string, number[] | undefined>();
  const constant = (v: string): number[] | undefined => {
    if (constCache.has(v)) return constCache.get(v);
    let r: number[] | undefined;
    const given = req.constants?.get(v);
    if (given) r = Array.isArray(given) ? [...given] : toNumbers(given as TensorData);
    else if (graph.initializers.has(v) && !wrt.includes(v) && !graph.inputs.some((i) => i.name === v))
      r = toNumbers(graph.initializers.get(v)!);
    else {
      const p = producers.get(v);
      if (p && p.opType === 'Constant' && (p.domain === '' || p.domain === 'ai.onnx')) r = constantNodeValue(p);
    }
    constCache.set(v, r);
    return r;
  };

  const available = new Set<string>([...graph.inputs.map((i) => i.name), ...graph.initializers.keys()]);
  const forward = topologicalOrder([...graph.nodes], available);

  for (const w of wrt) {
    const t = elemType(w);
    if (t === undefined && !available.has(w) && !producers.has(w)) throw new Error(`gradient builder: trainable '${w}' is not a value of the graph`);
    if (t !== undefined && !isFloatType(t)) throw new Error(`gradient builder: trainable '${w}' is not a floating-point tensor (element type ${t})`);
  }

  // Values that depend differentiably on some `wrt`.
  // Sub-graphs (If, Loop, Scan) reading values implicitly count those as inputs.
  const reads = (n: Node): string[] => (Object.values(n.attrs).some((a) => a.type === 'graph' || a.type === 'graphs') ? [...n.inputs, ...outerScopeReads(n)] : n.inputs);
  const active = new Set<string>(wrt);
  for (const n of forward) {
    if (NON_DIFFERENTIABLE_OPS.has(n.opType) && isStandard(n)) continue;
    if (!reads(n).some((i) => i && active.has(i))) continue;
    for (const o of n.outputs) {
      if (!o) continue;
      const t = elemType(o);
      if (t === undefined || isFloatType(t)) active.add(o);
    }
  }
  // Of those, the ones the loss depends on.
  const live = new Set<string>();
  if (active.has(loss)) live.add(loss);
  for (let k = forward.length - 1; k >= 0; k--) {
    const n = forward[k]!;
    if (!n.outputs.some((o) => o && live.has(o))) continue;
    for (const i of reads(n)) if (i && active.has(i)) live.add(i);
  }

  const contributions = new Map<string, string[]>();
  const gradOf = new Map<string, string | undefined>();
  const created = new Set<string>();
  const materialize = (v: string): string | undefined => {
    if (gradOf.has(v)) return gradOf.get(v);
    const list = contributions.get(v) ?? [];
    let g: string | undefined;
    if (list.length === 1) g = list[0];
    else if (list.length > 1) {
      g = b.node('Sum', list, {}, { name: `${stem(v)}/Accumulate` })[0]!;
      created.add(g);
    }
    gradOf.set(v, g);
    return g;
  };

  const firstBackward = graph.nodes.length;
  if (live.has(loss)) {
    const seed = b.constFloat(new Float32Array(numElements(shape(loss))).fill(1), shape(loss), stem(loss));
    let s = seed;
    const lt = elemType(loss);
    if (lt !== undefined && lt !== DataType.FLOAT) s = b.op('Cast', [seed], { to: lt });
    contributions.set(loss, [s]);
    gradOf.set(loss, s);
  }

  for (let k = forward.length - 1; k >= 0; k--) {
    const node = forward[k]!;
    if (!node.outputs.some((o) => o && live.has(o))) continue;
    // A node producing a `wrt` value from non-trainable inputs (e.g. unpacking a flat parameter buffer) is not differentiated.
    if (!reads(node).some((i) => i && live.has(i))) continue;
    const outGrads = node.outputs.map((o) => (o && live.has(o) ? materialize(o) : undefined));
    if (outGrads.every((g) => g === undefined)) continue;
    const rule = isStandard(node) ? rules[node.opType] : undefined;
    if (!rule) throw new NoGradientRuleError(node.name, isStandard(node) ? node.opType : `${node.domain}.${node.opType}`, req.block);
    const ctx: GradContext = {
      b,
      node,
      opset,
      gradOutput: (i) => outGrads[i],
      needsGrad: (i) => {
        const v = node.inputs[i];
        return !!v && live.has(v);
      },
      shape,
      elemType: (v) => {
        const t = elemType(v);
        if (t === undefined) throw new Error(`gradient builder: no element type for value '${v}'`);
        return t;
      },
      constant,
    };
    const first = graph.nodes.length;
    let grads: (string | undefined)[];
    try {
      grads = rule(ctx);
    } catch (e) {
      // Rules that refuse a variant (e.g. Pad in reflect mode) do not know the block.
      if (e instanceof NoGradientRuleError && !e.block && req.block) throw new NoGradientRuleError(e.nodeName, e.opType, req.block);
      throw e;
    }
    for (let j = first; j < graph.nodes.length; j++) {
      const bn = graph.nodes[j]!;
      bn.name = b.unique(`${stem(node.name || node.opType)}/${bn.opType}`);
      for (const o of bn.outputs) if (o) created.add(o);
    }
    node.inputs.forEach((v, i) => {
      const g = grads[i];
      if (!v || !g || !live.has(v)) return;
      let list = contributions.get(v);
      if (!list) contributions.set(v, (list = []));
      list.push(g);
    });
  }

  const result = new Map<string, string>();
  for (const w of wrt) {
    let g = materialize(w);
    if (!g) {
      g = zeros(b, shape(w));
      created.add(g);
      gradOf.set(w, g);
    }
    result.set(w, g);
  }

  // Readable names: each created gradient value takes the name of the first
  // forward value (in backward order) it is the gradient of.
  const rename = new Map<string, string>();
  const forwardNames = new Set(available);
  for (const n of forward) for (const o of n.outputs) if (o) forwardNames.add(o);
  for (const [v, g] of gradOf) {
    if (!g || !created.has(g) || rename.has(g) || forwardNames.has(g)) continue;
    rename.set(g, b.unique(stem(v)));
  }
  if (rename.size) {
    for (const n of graph.nodes.slice(firstBackward)) {
      n.inputs = n.inputs.map((i) => rename.get(i) ?? i);
      n.outputs = n.outputs.map((o) => rename.get(o) ?? o);
    }
    for (const [w, g] of result) result.set(w, rename.get(g) ?? g);
  }
  return result;
}

function isStandard(n: Node): boolean {
  return n.domain === '' || n.domain === 'ai.onnx';
}


function constantNodeValue(n: Node): number[] | undefined {
  const a = n.attrs;
  const v = a['value'];
  if (v?.type === 'tensor') {
    try {
      return toNumbers(v.value);
    } catch {
      return undefined;
    }
  }
  for (const k of ['value_float', 'value_int'] as const) {
    const x = a[k];
    if (x && (x.type === 'float' || x.type === 'int')) return [x.value];
  }
  for (const k of ['value_floats', 'value_ints'] as const) {
    const x = a[k];
    if (x && (x.type === 'floats' || x.type === 'ints')) return [...x.value];
  }
  return undefined;
}
