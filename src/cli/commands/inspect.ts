/** `sff-finetune inspect <model>`: what the importer sees — ops, parameters, head, cuts and SFF blocks. */
import { resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { loadModel } from '../../onnx/io.js';
import { DataType } from '../../ir/types.js';
import type { Dim, ValueInfo } from '../../ir/graph.js';
import { importModel, countElements, parseImageSize } from '../../import/index.js';
export { parseImageSize } from '../../import/index.js';
import { splitIntoBlocksDetailed, type BlockSpec, type SplitMethod } from '../../blocks/index.js';
import { printResult, type OutputArgs } from '../output.js';
import { DEVICE_HELP, parseDevice, placementLines } from '../../runtime/providers.js';
import { prepareModel } from '../../train/model.js';
import { planStages } from '../../train/stages.js';
import { stagePlacements, type BlockPlacement } from '../../train/placement.js';
import { benchRunConfig } from '../../bench/throughput.js';
import { activationBytes, macsOf, type BlockCost } from '../../ir/cost.js';
import { inspectSffExport, isSffExport } from './inspectExport.js';

export interface InspectOptions {
  /** 'auto' (default), 'cuts', or explicit cut tensor names. */
  blocks?: BlockSpec;
  imageSize?: [number, number];
  /** Batch size the activation memory is given for (default: training's, 128 up to 64 px, else 64). */
  batchSize?: number;
}

export type { BlockCost } from '../../ir/cost.js';

export interface TensorSummary {
  name: string;
  shape: Dim[];
  elemType: string;
}

export interface InspectReport {
  file: string;
  /** A classifier to fine-tune, or a model sff-finetune exported (its blocks end in goodness outputs). */
  kind: 'classifier' | 'sff-export';
  irVersion: number;
  opset: number;
  producer: string;
  inputs: TensorSummary[];
  outputs: TensorSummary[];
  /** Input dims used for the shapes below (batch 1). */
  inputDims: number[];
  /** Why that image size (graph, --image-size, metadata, default). */
  imageSizeReason: string;
  /** Batch size of the activation-memory column. */
  batchSize: number;
  /** The source's weight type (float16 models train in float32). */
  sourceDtype: string;
  dynamicBatch: boolean;
  nodeCount: number;
  opCounts: Record<string, number>;
  paramCount: number;
  /** Elements of BatchNorm running statistics (not trained). */
  bufferCount: number;
  batchNorm: 'present' | 'absent (folded or never there)';
  head: {
    feature: string;
    featureShape?: number[];
    nodes: { name: string; opType: string }[];
    projection: string[];
    classifier?: string;
    classes: number;
    paramCount: number;
  };
  cuts: { name: string; shape?: number[] }[];
  blockMethod: SplitMethod | 'sff-export';
  blocks: (BlockCost & {
    index: number;
    name: string;
    first: string;
    last: string;
    nodeCount: number;
    input: string;
    output: string;
    outputShape?: number[];
  })[];
  notes: string[];
}


function summary(v: ValueInfo): TensorSummary {
  const t = v.type?.kind === 'tensor' ? v.type : undefined;
  return { name: v.name, shape: t?.shape ?? [], elemType: t ? (DataType[t.elemType]?.toLowerCase() ?? String(t.elemType)) : 'opaque' };
}

const defaultBatch = (size: readonly number[]) => (Math.max(...size) <= 64 ? 128 : 64);

/** A model sff-finetune exported: its trained blocks, ensemble and per-block costs. */
async function inspectExportedModel(path: string, source: ReturnType<typeof loadModel>, opts: InspectOptions): Promise<InspectReport> {
  const r = await inspectSffExport(source, { ...(opts.imageSize ? { imageSize: opts.imageSize } : {}), ...(opts.batchSize ? { batchSize: opts.batchSize } : {}) });
  const batchSize = r.batchSize;
  const opCounts: Record<string, number> = {};
  for (const n of source.graph.nodes) opCounts[n.opType] = (opCounts[n.opType] ?? 0) + 1;
  return {
    file: resolve(path),
    kind: 'sff-export',
    irVersion: source.irVersion,
    opset: source.opsetImports.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 0,
    producer: [source.producerName, source.producerVersion].filter(Boolean).join(' '),
    inputs: source.graph.feedInputs().map(summary),
    outputs: source.graph.outputs.map(summary),
    inputDims: r.inputDims,
    imageSizeReason: r.imageSizeReason,
    batchSize,
    sourceDtype: 'float32',
    dynamicBatch: true,
    nodeCount: source.graph.nodes.length,
    opCounts,
    paramCount: r.paramCount,
    bufferCount: r.bufferCount,
    batchNorm: opCounts.BatchNormalization ? 'present' : 'absent (folded or never there)',
    head: { feature: '', nodes: r.ensemble, projection: [], classes: r.classes.length, paramCount: 0 },
    cuts: r.blocks.slice(0, -1).map((b) => ({ name: b.output, shape: b.outputShape })),
    blockMethod: 'sff-export',
    blocks: r.blocks.map(({ weight: _w, ...b }) => ({ ...b, input: '' })),
    notes: [`exported by sff-finetune: ${r.blocks.length} trained blocks, each with its aux head and goodness output; 'scores' is their ensemble (weights ${r.blocks.map((b) => b.weight).join(', ')})`],
  };
}

/** Loads, imports and splits a model; throws ModelFileError, UnsupportedOpError, ImportError or BlockSpecError. */
export async function inspectModel(path: string, opts: InspectOptions = {}): Promise<InspectReport> {
  const source = loadModel(path);
  if (isSffExport(source)) return inspectExportedModel(path, source, opts);
  // inspect shows a model rather than stop: a symbolic size of any channel count gets a default.
  const im = await importModel(source, { ...(opts.imageSize ? { imageSize: opts.imageSize } : {}), anyChannels: true });
  const split = splitIntoBlocksDetailed(im, opts.blocks ?? 'auto');
  const g = im.model.graph;
  const batchSize = opts.batchSize ?? defaultBatch(im.inputDims.slice(2));
  return {
    file: resolve(path),
    kind: 'classifier',
    irVersion: source.irVersion,
    opset: im.opset,
    producer: [source.producerName, source.producerVersion].filter(Boolean).join(' '),
    inputs: source.graph.feedInputs().map(summary),
    outputs: source.graph.outputs.map(summary),
    inputDims: im.inputDims,
    imageSizeReason: im.imageSize.reason,
    batchSize,
    sourceDtype: im.sourceDtype,
    dynamicBatch: im.dynamicBatch,
    nodeCount: g.nodes.length,
    opCounts: im.opCounts,
    paramCount: im.paramCount,
    bufferCount: countElements(g, im.buffers),
    batchNorm: im.hasBatchNorm ? 'present' : 'absent (folded or never there)',
    head: {
      feature: im.feature,
      featureShape: im.shapes.get(im.feature)?.dims,
      nodes: im.head.nodes.map((n) => ({ name: n.name, opType: n.opType })),
      projection: im.head.projection.map((n) => n.name),
      classifier: im.head.classifier,
      classes: im.head.classes,
      paramCount: im.head.paramCount,
    },
    cuts: split.cuts.map((c) => ({ name: c, shape: im.shapes.get(c)?.dims })),
    blockMethod: split.method,
    blocks: split.blocks.map((b) => ({
      index: b.index,
      name: b.name,
      first: b.nodes[0]?.name ?? '',
      last: b.nodes[b.nodes.length - 1]?.name ?? '',
      nodeCount: b.nodes.length,
      input: b.input,
      output: b.output,
      outputShape: b.outputShape,
      paramCount: b.paramCount,
      macs: macsOf(b.nodes, im.shapes, g),
      activationBytes: activationBytes(b.nodes, im.shapes, batchSize),
    })),
    notes: im.notes,
  };
}

const fmtInt = (n: number) => n.toLocaleString('en-US');
const fmtShape = (s?: readonly Dim[]) => (s ? `[${s.map((d) => (d === null ? '?' : String(d))).join(',')}]` : '?');

function table(headers: string[], rows: string[][], right: Set<number> = new Set()): string {
  const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (right.has(i) ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join('  ').trimEnd();
  return [line(headers), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

/** Shortens long node names from the middle so tables stay readable. */
function clip(s: string, max = 48): string {
  return s.length <= max ? s : `${s.slice(0, 20)}…${s.slice(s.length - (max - 21))}`;
}

/** The human-readable report. */
export function formatInspectReport(r: InspectReport): string {
  const out: string[] = [];
  out.push(`${r.file}`);
  out.push(`  opset ${r.opset}, IR ${r.irVersion}${r.producer ? `, from ${r.producer}` : ''}; ${r.nodeCount} nodes after import`);
  for (const i of r.inputs) out.push(`  input   ${i.name} ${i.elemType} ${fmtShape(i.shape)}${r.dynamicBatch ? '' : ' (fixed batch)'}`);
  for (const o of r.outputs) out.push(`  output  ${o.name} ${o.elemType} ${fmtShape(o.shape)}`);
  out.push(`  ops     ${Object.entries(r.opCounts).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  out.push(`  params  ${fmtInt(r.paramCount)} trainable${r.bufferCount ? ` + ${fmtInt(r.bufferCount)} BN running statistics` : ''}; BatchNorm ${r.batchNorm}${r.sourceDtype !== 'float32' ? `; weights stored as ${r.sourceDtype}, trained in float32` : ''}`);
  out.push(`  size    ${r.inputDims[2]}×${r.inputDims[3]}: ${r.imageSizeReason}`);
  out.push('');
  if (r.kind === 'sff-export') {
    out.push(`SFF export: ${r.head.classes} classes; 'scores' = ${r.head.nodes.map((n) => n.opType).join(', ') || 'the last goodness'} over the blocks' goodness outputs`);
  } else {
    out.push(`Head (not used by SFF): ${r.head.classes} classes, ${fmtInt(r.head.paramCount)} params, from '${r.head.feature}' ${fmtShape(r.head.featureShape)}`);
    out.push(`  ${r.head.nodes.map((n) => n.opType).join(' → ')}${r.head.classifier ? `   (classifier: ${r.head.classifier})` : ''}`);
    if (r.head.projection.length) out.push(`  includes the pre-pooling projection ${r.head.projection[0]}`);
  }
  out.push('');
  out.push(`${r.kind === 'sff-export' ? 'Trained blocks' : 'SFF blocks'} (${r.blocks.length}, by ${r.blockMethod}), input ${fmtShape(r.inputDims)}; MACs per image, activations at batch ${r.batchSize}:`);
  out.push(
    table(
      ['#', 'block', 'nodes', 'first .. last', 'output shape', 'params', 'MMACs', 'act. MB'],
      r.blocks.map((b) => [
        String(b.index), b.name, String(b.nodeCount), `${clip(b.first)} .. ${clip(b.last)}`, fmtShape(b.outputShape), fmtInt(b.paramCount),
        (b.macs / 1e6).toFixed(1), (b.activationBytes / 2 ** 20).toFixed(1),
      ]),
      new Set([0, 2, 5, 6, 7]),
    ),
  );
  const sum = r.blocks.reduce((a, b) => a + b.paramCount, 0);
  const macs = r.blocks.reduce((a, b) => a + b.macs, 0);
  const act = r.blocks.reduce((a, b) => Math.max(a, b.activationBytes), 0);
  out.push(`blocks ${fmtInt(sum)}${r.kind === 'sff-export' ? '' : ` + head ${fmtInt(r.head.paramCount)} = ${fmtInt(sum + r.head.paramCount)}`} params; ${(macs / 1e6).toFixed(1)} MMACs per image; largest block keeps ${(act / 2 ** 20).toFixed(1)} MB of activations at batch ${r.batchSize}`);
  out.push('');
  out.push(`Cuts (${r.cuts.length}; valid --blocks entries): ${r.cuts.map((c) => c.name).join(', ')}`);
  if (r.notes.length) {
    out.push('');
    out.push('Import notes:');
    for (const n of r.notes) out.push(`  - ${n}`);
  }
  return out.join('\n');
}

/** "auto" | "cuts" | "T1,T2,…" → a block spec. */
export function parseBlockSpec(s: string | undefined): BlockSpec {
  if (!s || s === 'auto') return 'auto';
  if (s === 'cuts') return 'cuts';
  return s.split(',').map((t) => t.trim()).filter(Boolean);
}

export interface InspectArgs extends OutputArgs {
  model: string;
  blocks?: string;
  'image-size'?: string;
  device?: string;
  'batch-size'?: number;
}

/** The SFF stages of the model as the trainer would build them, placed on --device (batch 2 unless --batch-size). */
async function devicePlacement(args: InspectArgs): Promise<BlockPlacement[]> {
  const size = parseImageSize(args['image-size']);
  const batch = args['batch-size'] ?? 2;
  const pm = await prepareModel(resolve(args.model), { blocks: args.blocks ?? 'auto', ...(size ? { imageSize: size } : {}) });
  const classes = pm.imported.head.classes;
  const stages = planStages(pm, benchRunConfig('sff', classes, pm.imageSize[0], batch, pm.fromScratch));
  return stagePlacements(stages, { device: args.device!, batchSize: batch, classes });
}

export const inspectCommand: CommandModule<object, InspectArgs> = {
  command: 'inspect <model>',
  describe: 'Show what sff-finetune sees in an ONNX model: ops, parameters, the classifier head, the cuts and the SFF blocks',
  builder: (y: Argv<object>) =>
    y
      .positional('model', { type: 'string', demandOption: true, describe: 'the .onnx file' })
      .option('blocks', { type: 'string', describe: "block boundaries: 'auto' (module scopes, else cuts), 'cuts' (every cut), or cut tensor names T1,T2,…" })
      .option('image-size', { type: 'string', describe: "input size H,W or H (default: the graph's, else its metadata's, else 224)" })
      .option('batch-size', { type: 'number', describe: "batch size of the activation-memory column (default: training's, 128 up to 64 px, else 64); with --device, of the graphs built (default 2)" })
      .option('device', { type: 'string', describe: `${DEVICE_HELP}: also build every block's train and eval graphs for it and report which nodes run on it (CPU fallback)` }) as unknown as Argv<InspectArgs>,
  handler: async (args) => {
    const b = args['batch-size'];
    if (b !== undefined && !(Number.isInteger(b) && b > 0)) throw new Error(`--batch-size must be a positive integer, got ${b}`);
    const imageSize = parseImageSize(args['image-size']);
    const report = await inspectModel(args.model, { blocks: parseBlockSpec(args.blocks), ...(imageSize ? { imageSize } : {}), ...(b ? { batchSize: b } : {}) });
    const placement = args.device && parseDevice(args.device).kind !== 'cpu' ? await devicePlacement(args) : undefined;
    printResult(args, placement ? { ...report, placement } : report, () => {
      const lines = [formatInspectReport(report)];
      if (placement) {
        lines.push(`\nPlacement on --device ${args.device} (SFF train step and eval graph of each block, batch ${b ?? 2}):`);
        for (const p of placement) lines.push(`  block ${p.index} ${p.name}\n${placementLines(p.index, p.name, p.train, p.eval).join('\n')}`);
        const off = placement.reduce((a, p) => a + p.train.fallback.length + p.eval.fallback.length, 0);
        lines.push(off ? `FALLBACK: ${off} nodes would run on the CPU instead of ${placement[0]!.train.provider}` : `every node on ${placement[0]?.train.provider ?? 'the device'}`);
      }
      return lines.join('\n');
    });
  },
};
