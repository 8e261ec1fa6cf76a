/**
 * Finding the classifier head: what follows the last spatial feature map.
 *
 * 1. The spatial tensor S is the last cut (from the input to the outputs) that is rank 4 with
 *    H·W > 1 (else the last rank-4 cut).
 * 2. 1×1-conv classifiers (SqueezeNet): when nothing after S has parameters and S comes from
 *    [activations ←] a 1×1 Conv with as many output channels as classes, that conv joins the head.
 * 3. Pre-pooling projection (torchvision MobileNetV3's features.12, MobileNetV2/EfficientNet's last
 *    conv, TFLite MobileNetV3's 960-channel conv): when the head has a learned classifier and S comes
 *    from [activations ←] [BatchNorm ←] a 1×1, group-1 Conv that *expands* channels from a cut,
 *    that conv is part of the classifier, not of the feature extractor, and joins the head
 *    (option `projectionInHead`, default true). SFF blocks therefore end at the tensor that feeds it.
 */
import type { Graph, Node } from '../ir/graph.js';
import { attrInt, attrInts } from '../ir/attrs.js';
import type { ValueShape } from '../ir/shapes.js';
import { findCuts, pathNodes } from '../ir/cuts.js';
import { ImportError } from './errors.js';
import { LINEAR_OPS, UNARY_ACTIVATIONS, countElements, nodeParams } from './ops.js';

export interface HeadInfo {
  /** Input of the head = output of the last SFF block. */
  feature: string;
  /** The last spatial map before global pooling / flattening (equals `feature` unless a projection conv or 1×1 classifier joined the head). */
  spatial: string;
  /** Head nodes in topological order (projection conv, pooling, flatten, classifier, softmax…). */
  nodes: Node[];
  /** Nodes of a pre-pooling projection conv that rule 3 moved into the head (empty if none). */
  projection: Node[];
  /** The node that consumes the spatial map first (pooling or flatten), if any. */
  pooling?: string;
  /** The last learned layer producing the class scores (Gemm, MatMul or Conv); replace it for a new label set. */
  classifier?: string;
  /** Number of classes: the last dimension of the first graph output. */
  classes: number;
  /** Trainable parameters of the head and their element count. */
  params: string[];
  paramCount: number;
  /** Graph outputs produced by the head. */
  outputs: string[];
}

export interface HeadOptions {
  /** Rule 3 above (default true). */
  projectionInHead?: boolean;
}

function isSpatial(s: ValueShape | undefined): boolean {
  return !!s && s.dims.length === 4 && s.dims[2]! * s.dims[3]! > 1;
}

/** The input x of an activation y = f(x), including hard-swish written as Mul(x, HardSigmoid(x)). */
export function activationInput(n: Node, producers: Map<string, Node>): string | undefined {
  if (UNARY_ACTIVATIONS.has(n.opType)) return n.inputs[0];
  if (n.opType === 'Mul' && n.inputs.length === 2) {
    const [a, b] = n.inputs as [string, string];
    const pb = producers.get(b);
    if (pb && UNARY_ACTIVATIONS.has(pb.opType) && pb.inputs[0] === a) return a;
    const pa = producers.get(a);
    if (pa && UNARY_ACTIVATIONS.has(pa.opType) && pa.inputs[0] === b) return b;
  }
  return undefined;
}

/** Walks back from `v` over activation nodes; returns the pre-activation value and the nodes passed. */
function skipActivations(v: string, producers: Map<string, Node>): { value: string; nodes: Node[] } {
  const nodes: Node[] = [];
  for (;;) {
    const p = producers.get(v);
    const x = p ? activationInput(p, producers) : undefined;
    if (!p || x === undefined) return { value: v, nodes };
    nodes.push(p);
    if (p.opType === 'Mul') nodes.push(producers.get(p.inputs[0] === x ? p.inputs[1]! : p.inputs[0]!)!);
    v = x;
  }
}

function isPointwiseConv(n: Node | undefined): n is Node {
  if (!n || n.opType !== 'Conv') return false;
  const k = attrInts(n, 'kernel_shape', []);
  return k.length > 0 && k.every((d) => d === 1);
}

export function findHead(graph: Graph, input: string, shapes: Map<string, ValueShape>, opts: HeadOptions = {}): HeadInfo {
  const outputs = graph.outputs.map((o) => o.name);
  const cuts = [input, ...findCuts(graph, { from: input, to: outputs })];
  const cutSet = new Set(cuts);
  let idx = -1;
  for (let i = cuts.length - 1; i >= 0 && idx < 0; i--) if (isSpatial(shapes.get(cuts[i]!))) idx = i;
  for (let i = cuts.length - 1; i >= 0 && idx < 0; i--) if (shapes.get(cuts[i]!)?.dims.length === 4) idx = i;
  if (idx < 0) throw new ImportError(`no 4-D feature map found between input '${input}' and the outputs; SFF needs a convolutional network with NCHW maps`);
  let spatial = cuts[idx]!;
  if (spatial === input) throw new ImportError(`the last spatial map is the input '${input}' itself: the network has no convolutional feature extractor`);
  const producers = graph.producers();
  const out0 = shapes.get(outputs[0]!);
  const classes = out0 && out0.dims.length ? out0.dims[out0.dims.length - 1]! : 0;
  const hasLearned = (nodes: Node[]) => nodes.some((n) => LINEAR_OPS.has(n.opType) && nodeParams(graph, [n], producers).length > 0);
  const downstream = (v: string) => pathNodes(graph, v, outputs);

  // Rule 2: 1×1-conv classifier.
  if (!hasLearned(downstream(spatial))) {
    const { value } = skipActivations(spatial, producers);
    const conv = producers.get(value);
    if (isPointwiseConv(conv) && shapes.get(value)?.dims[1] === classes && cutSet.has(conv.inputs[0]!) && conv.inputs[0] !== input)
      spatial = conv.inputs[0]!;
  }
  let feature = spatial;
  let projection: Node[] = [];
  // Rule 3: pre-pooling projection conv.
  if ((opts.projectionInHead ?? true) && hasLearned(downstream(spatial))) {
    const act = skipActivations(spatial, producers);
    let v = act.value;
    const nodes = [...act.nodes];
    const bn = producers.get(v);
    if (bn?.opType === 'BatchNormalization') {
      nodes.push(bn);
      v = bn.inputs[0]!;
    }
    const conv = producers.get(v);
    if (isPointwiseConv(conv) && attrInt(conv, 'group', 1) === 1) {
      const x = conv.inputs[0]!;
      const cin = shapes.get(x)?.dims[1] ?? Infinity;
      const cout = shapes.get(v)?.dims[1] ?? 0;
      if (cout > cin && cutSet.has(x) && x !== input && isSpatial(shapes.get(x))) {
        feature = x;
        projection = [conv, ...nodes.reverse()];
      }
    }
  }
  const nodes = downstream(feature);
  const params = nodeParams(graph, nodes, producers);
  const learned = nodes.filter((n) => LINEAR_OPS.has(n.opType) && nodeParams(graph, [n], producers).length > 0 && !projection.includes(n));
  const consumers = graph.consumers();
  return {
    feature,
    spatial,
    nodes,
    projection,
    pooling: consumers.get(spatial)?.[0]?.name,
    classifier: learned[learned.length - 1]?.name,
    classes,
    params,
    paramCount: countElements(graph, params),
    outputs,
  };
}
