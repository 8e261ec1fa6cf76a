/**
 * `inspect` on a model sff-finetune exported (metadata `sff.blocks`): no classifier head to find,
 * but the trained blocks, each ending in its goodness output. A block is every node its goodness
 * output needs that an earlier block's does not (its layers, its norm, its aux head); what only
 * `scores` needs is the ensemble.
 */
import { getMetadata, type Model, type Node } from '../../ir/graph.js';
import { probeShapes } from '../../runtime/probe.js';
import { activationBytes, macsOf, type BlockCost } from '../../ir/cost.js';
import { chooseImageSize } from '../../import/index.js';
import { DataType } from '../../ir/types.js';

export interface ExportBlocks {
  classes: string[];
  inputDims: number[];
  imageSizeReason: string;
  batchSize: number;
  blocks: (BlockCost & { index: number; name: string; nodeCount: number; first: string; last: string; output: string; outputShape?: number[]; weight: number })[];
  ensemble: { name: string; opType: string }[];
  paramCount: number;
  bufferCount: number;
}

export function isSffExport(model: Model): boolean {
  return getMetadata(model, 'sff.blocks') !== undefined;
}

function elements(model: Model, names: Iterable<string>): number {
  let c = 0;
  for (const n of new Set(names)) {
    const t = model.graph.initializers.get(n);
    if (t) c += t.dims.reduce((a, b) => a * b, 1);
  }
  return c;
}

export async function inspectSffExport(model: Model, opts: { imageSize?: [number, number]; batchSize?: number }): Promise<ExportBlocks> {
  const g = model.graph;
  const meta = JSON.parse(getMetadata(model, 'sff.blocks')!) as { name: string; output: string; weight: number }[];
  const classes = JSON.parse(getMetadata(model, 'sff.classes') ?? '[]') as string[];
  const input = g.feedInputs()[0];
  const shape = input?.type?.kind === 'tensor' ? input.type.shape : undefined;
  if (!input || !shape || shape.length !== 4) throw new Error(`the exported model has no 4-D image input`);
  const size = chooseImageSize(model, input.name, shape, { ...(opts.imageSize ? { explicit: opts.imageSize } : {}), anyChannels: true });
  const inputDims = [1, Number(shape[1]), ...size.size];
  // The trainer's default batch for this size.
  const batchSize = opts.batchSize ?? (Math.max(...size.size) <= 64 ? 128 : 64);
  const shapes = await probeShapes(model, { inputDims: { [input.name]: inputDims } });
  const producers = g.producers();
  const claimed = new Set<Node>();
  const ancestors = (v: string): Node[] => {
    const out: Node[] = [];
    const stack = [v];
    const seen = new Set<Node>();
    while (stack.length) {
      const p = producers.get(stack.pop()!);
      if (!p || seen.has(p) || claimed.has(p)) continue;
      seen.add(p);
      out.push(p);
      for (const i of p.inputs) if (i) stack.push(i);
    }
    const order = new Map(g.nodes.map((n, i) => [n, i]));
    return out.sort((a, b) => order.get(a)! - order.get(b)!);
  };
  const isFloatInit = (v: string) => g.initializers.get(v)?.dataType === DataType.FLOAT;
  const groups = meta.map((m) => {
    const nodes = ancestors(m.output);
    for (const n of nodes) claimed.add(n);
    return { m, nodes };
  });
  const blocks = groups.map(({ m, nodes }, k) => {
    const stats = nodes.flatMap((n) => (n.opType === 'BatchNormalization' ? [n.inputs[3]!, n.inputs[4]!] : []));
    const params = nodes.flatMap((n) => n.inputs.filter((i) => i && isFloatInit(i) && !stats.includes(i)));
    // The value the next block reads from this one (its output), else the goodness.
    const next = groups[k + 1]?.nodes ?? [];
    const produced = new Set(nodes.flatMap((n) => n.outputs));
    const output = next.flatMap((n) => n.inputs).find((i) => produced.has(i)) ?? m.output;
    return {
      index: k,
      name: m.name,
      nodeCount: nodes.length,
      first: nodes[0]?.name ?? '',
      last: nodes[nodes.length - 1]?.name ?? '',
      output,
      outputShape: shapes.get(output)?.dims,
      weight: m.weight,
      paramCount: elements(model, params),
      macs: macsOf(nodes, shapes, g),
      activationBytes: activationBytes(nodes, shapes, batchSize),
    };
  });
  const ensemble = ancestors('scores');
  return {
    classes,
    inputDims,
    imageSizeReason: size.reason,
    batchSize,
    blocks,
    ensemble: ensemble.map((n) => ({ name: n.name, opType: n.opType })),
    paramCount: elements(model, [...g.initializers.keys()].filter(isFloatInit)) - elements(model, g.nodes.flatMap((n) => (n.opType === 'BatchNormalization' ? [n.inputs[3]!, n.inputs[4]!] : []))),
    bufferCount: elements(model, g.nodes.flatMap((n) => (n.opType === 'BatchNormalization' ? [n.inputs[3]!, n.inputs[4]!] : []))),
  };
}
