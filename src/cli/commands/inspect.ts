/** `sff-finetune inspect <model>`: what the importer sees — ops, parameters, head, cuts and SFF blocks. */
import { resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { loadModel } from '../../onnx/io.js';
import { DataType } from '../../ir/types.js';
import type { Dim, ValueInfo } from '../../ir/graph.js';
import { importModel, countElements } from '../../import/index.js';
import { splitIntoBlocksDetailed, type BlockSpec, type SplitMethod } from '../../blocks/index.js';
import { printResult, type OutputArgs } from '../output.js';

export interface InspectOptions {
  /** 'auto' (default), 'cuts', or explicit cut tensor names. */
  blocks?: BlockSpec;
  imageSize?: [number, number];
}

export interface TensorSummary {
  name: string;
  shape: Dim[];
  elemType: string;
}

export interface InspectReport {
  file: string;
  irVersion: number;
  opset: number;
  producer: string;
  inputs: TensorSummary[];
  outputs: TensorSummary[];
  /** Input dims used for the shapes below (batch 1). */
  inputDims: number[];
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
  blockMethod: SplitMethod;
  blocks: {
    index: number;
    name: string;
    first: string;
    last: string;
    nodeCount: number;
    input: string;
    output: string;
    outputShape?: number[];
    paramCount: number;
  }[];
  notes: string[];
}


function summary(v: ValueInfo): TensorSummary {
  const t = v.type?.kind === 'tensor' ? v.type : undefined;
  return { name: v.name, shape: t?.shape ?? [], elemType: t ? (DataType[t.elemType]?.toLowerCase() ?? String(t.elemType)) : 'opaque' };
}

/** Loads, imports and splits a model; throws ModelFileError, UnsupportedOpError, ImportError or BlockSpecError. */
export async function inspectModel(path: string, opts: InspectOptions = {}): Promise<InspectReport> {
  const source = loadModel(path);
  const im = await importModel(source, { imageSize: opts.imageSize });
  const split = splitIntoBlocksDetailed(im, opts.blocks ?? 'auto');
  const g = im.model.graph;
  return {
    file: resolve(path),
    irVersion: source.irVersion,
    opset: im.opset,
    producer: [source.producerName, source.producerVersion].filter(Boolean).join(' '),
    inputs: source.graph.feedInputs().map(summary),
    outputs: source.graph.outputs.map(summary),
    inputDims: im.inputDims,
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
  out.push(`  params  ${fmtInt(r.paramCount)} trainable${r.bufferCount ? ` + ${fmtInt(r.bufferCount)} BN running statistics` : ''}; BatchNorm ${r.batchNorm}`);
  out.push('');
  out.push(`Head (not used by SFF): ${r.head.classes} classes, ${fmtInt(r.head.paramCount)} params, from '${r.head.feature}' ${fmtShape(r.head.featureShape)}`);
  out.push(`  ${r.head.nodes.map((n) => n.opType).join(' → ')}${r.head.classifier ? `   (classifier: ${r.head.classifier})` : ''}`);
  if (r.head.projection.length) out.push(`  includes the pre-pooling projection ${r.head.projection[0]}`);
  out.push('');
  out.push(`SFF blocks (${r.blocks.length}, by ${r.blockMethod}), input ${fmtShape(r.inputDims)}:`);
  out.push(
    table(
      ['#', 'block', 'nodes', 'first .. last', 'output shape', 'params'],
      r.blocks.map((b) => [String(b.index), b.name, String(b.nodeCount), `${clip(b.first)} .. ${clip(b.last)}`, fmtShape(b.outputShape), fmtInt(b.paramCount)]),
      new Set([0, 2, 5]),
    ),
  );
  const sum = r.blocks.reduce((a, b) => a + b.paramCount, 0);
  out.push(`blocks ${fmtInt(sum)} + head ${fmtInt(r.head.paramCount)} = ${fmtInt(sum + r.head.paramCount)} params`);
  out.push('');
  out.push(`Cuts (${r.cuts.length}; valid --blocks entries): ${r.cuts.map((c) => c.name).join(', ')}`);
  if (r.notes.length) {
    out.push('');
    out.push('Import notes:');
    for (const n of r.notes) out.push(`  - ${n}`);
  }
  return out.join('\n');
}

/** "224", "224,224" or "224x192" → [h, w]. */
export function parseImageSize(s: string | number | undefined): [number, number] | undefined {
  if (s === undefined || s === '') return undefined;
  const parts = String(s).split(/[x,×]/).map((p) => Number(p.trim()));
  const [h, w] = parts.length === 1 ? [parts[0]!, parts[0]!] : parts;
  if (parts.length > 2 || !Number.isInteger(h) || !Number.isInteger(w) || h! < 1 || w! < 1)
    throw new Error(`--image-size should be H or H,W with positive integers, got '${s}'`);
  return [h!, w!];
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
}

export const inspectCommand: CommandModule<object, InspectArgs> = {
  command: 'inspect <model>',
  describe: 'Show what sff-finetune sees in an ONNX model: ops, parameters, the classifier head, the cuts and the SFF blocks',
  builder: (y: Argv<object>) =>
    y
      .positional('model', { type: 'string', demandOption: true, describe: 'the .onnx file' })
      .option('blocks', { type: 'string', describe: "block boundaries: 'auto' (module scopes, else cuts), 'cuts' (every cut), or cut tensor names T1,T2,…" })
      .option('image-size', { type: 'string', describe: 'input size H or H,W (needed when the model has symbolic height/width)' }) as unknown as Argv<InspectArgs>,
  handler: async (args) => {
    const report = await inspectModel(args.model, { blocks: parseBlockSpec(args.blocks), imageSize: parseImageSize(args['image-size']) });
    printResult(args, report, () => formatInspectReport(report));
  },
};
