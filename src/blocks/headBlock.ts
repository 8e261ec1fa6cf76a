/**
 * The pretrained network's own head as one more SFF block.
 *
 * A pretrained classifier keeps much of what it knows for classification after the last
 * feature map: the pre-pooling projection conv (MobileNetV3's 1×1 conv to 960 channels),
 * global pooling and the penultimate 1×1 conv/linear (to 1280). SFF's body blocks end at
 * `imported.feature` and would drop all of it. This block runs those layers, from the
 * feature tensor up to the classifier's input; the classifier itself is left out (it
 * scores the source label set) and is replaced by the block's own J-way goodness head.
 */
import type { Node } from '../ir/graph.js';
import type { ImportedModel } from '../import/index.js';
import { countElements, nodeBuffers, nodeParams } from '../import/ops.js';
import type { SplitBlock } from './split.js';

export const HEAD_BLOCK_NAME = 'head';

/**
 * The head's layers before its classifier as a block reading `imported.feature`, or
 * undefined when the head has no learned classifier or no learned layer before it (a
 * Flatten alone keeps nothing the network learned). `index` is the block's position in the chain.
 */
export function pretrainedHeadBlock(imported: ImportedModel, index: number): SplitBlock | undefined {
  const head = imported.head;
  const classifier = head.nodes.find((n) => n.name === head.classifier);
  if (!classifier) return undefined;
  const output = classifier.inputs[0]!;
  if (output === head.feature) return undefined;
  const inHead = new Set(head.nodes);
  const producers = imported.model.graph.producers();
  const needed = new Set<Node>();
  const visit = (v: string) => {
    const p = producers.get(v);
    if (!p || !inHead.has(p) || needed.has(p)) return;
    needed.add(p);
    p.inputs.forEach((i) => i && visit(i));
  };
  visit(output);
  const nodes = head.nodes.filter((n) => needed.has(n));
  const g = imported.model.graph;
  // A block reads one tensor: every other value its nodes use is an initializer or made inside.
  const made = new Set(nodes.flatMap((n) => n.outputs));
  if (nodes.some((n) => n.inputs.some((i) => i && i !== head.feature && !made.has(i) && !g.initializers.has(i)))) return undefined;
  const trainable = nodeParams(g, nodes, producers);
  if (!trainable.length) return undefined;
  return {
    index,
    name: HEAD_BLOCK_NAME,
    input: head.feature,
    output,
    nodes,
    trainable,
    paramCount: countElements(g, trainable),
    state: nodeBuffers(g, nodes),
    outputShape: imported.shapes.get(output)?.dims,
  };
}
