/**
 * SFF blocks: a chain of sub-graphs separated by cut tensors.
 *
 * 'auto' rules, in order:
 * 1. Module scopes (exports that name nodes by module, or carry name_scopes metadata): start at the
 *    root of the module tree and descend while the body lies in a single container (torchvision
 *    MobileNetV3's `features` → its children features.0 … features.N). At that level every
 *    container child is one block. Leaf modules and functional ops before the first container form
 *    the 'stem' (ResNet's conv1/bn1/relu/maxpool); after it they join the block before them. When
 *    the level has no container at all (a flat model), each leaf that holds a Conv/Gemm/MatMul
 *    starts a block and parameter-free leaves (BN, ReLU, pool) join the block before them.
 *    Neighbouring groups are then merged until every boundary is a single cut tensor.
 * 2. No scopes: the graph's cuts. With residual Adds, a block boundary sits at each residual unit's
 *    entry (the last cut before the Add) and exit (the Add's output, extended over a trailing
 *    activation): MobileNet-style graphs give stem + one block per inverted-residual unit. Without
 *    residual Adds, each Conv/Gemm/MatMul with the parameter-free ops that follow it is a block.
 * The classifier head (see import/head.ts, which also takes a pre-pooling projection conv) is
 * never part of a block; blocks end at `imported.feature`.
 */
import type { Node } from '../ir/graph.js';
import type { ImportedModel } from '../import/index.js';
import { LINEAR_OPS, countElements, nodeBuffers, nodeParams } from '../import/ops.js';
import { activationInput } from '../import/head.js';
import { findCuts } from '../ir/cuts.js';
import { scopePath } from './scopes.js';
import type { Block } from './block.js';

/** A block as the split finds it: its trainable parameter count and output shape at batch 1 beside it. */
export interface SplitBlock extends Block {
  paramCount: number;
  outputShape?: number[];
}

export type BlockSpec = 'auto' | 'cuts' | string[];
export type SplitMethod = 'scopes' | 'residual-cuts' | 'conv-cuts' | 'all-cuts' | 'explicit';

export interface SplitResult {
  blocks: SplitBlock[];
  method: SplitMethod;
  /** Every cut from the input to the feature tensor, in order (the feature tensor last). */
  cuts: string[];
}

/** A block list that does not fit the graph (names the offending tensor). */
export class BlockSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BlockSpecError';
  }
}

/** Cut tensors from the model's input to its feature tensor (the tensors a block may end at). */
export function bodyCuts(imported: ImportedModel): string[] {
  return findCuts(imported.model.graph, { from: imported.input, to: imported.feature });
}

export function splitIntoBlocks(imported: ImportedModel, spec: BlockSpec = 'auto'): SplitBlock[] {
  return splitIntoBlocksDetailed(imported, spec).blocks;
}

export function splitIntoBlocksDetailed(imported: ImportedModel, spec: BlockSpec = 'auto'): SplitResult {
  const cuts = bodyCuts(imported);
  if (Array.isArray(spec)) {
    const pos = new Map(cuts.map((c, i) => [c, i]));
    const list = [...new Set(spec.map((s) => s.trim()).filter(Boolean))];
    for (const t of list) {
      if (pos.has(t)) continue;
      const exists = imported.model.graph.allNames().has(t);
      const head = imported.head.nodes.some((n) => n.outputs.includes(t));
      throw new BlockSpecError(
        !exists
          ? `--blocks: tensor '${t}' is not in the graph`
          : head
            ? `--blocks: tensor '${t}' is inside the classifier head (blocks end at '${imported.feature}')`
            : t === imported.input
              ? `--blocks: '${t}' is the input; list the tensors where blocks end`
              : `--blocks: tensor '${t}' is not a cut (some path from the input bypasses it, e.g. a residual branch); run 'inspect' to list the cuts`,
      );
    }
    const sorted = list.sort((a, b) => pos.get(a)! - pos.get(b)!);
    if (sorted[sorted.length - 1] !== imported.feature) sorted.push(imported.feature);
    return { blocks: makeBlocks(imported, sorted.map((b, i) => ({ output: b, name: `block${i}` }))), method: 'explicit', cuts };
  }
  if (spec === 'cuts') return { blocks: makeBlocks(imported, cuts.map((c, i) => ({ output: c, name: `block${i}` }))), method: 'all-cuts', cuts };
  if (spec !== 'auto') throw new BlockSpecError(`unknown block spec '${String(spec)}' (auto, cuts, or a list of tensor names)`);

  const byScope = scopeBoundaries(imported);
  if (byScope && byScope.length >= 2) return { blocks: makeBlocks(imported, byScope), method: 'scopes', cuts };
  const fallback = cutBoundaries(imported, cuts);
  if (byScope && byScope.length >= fallback.bounds.length) return { blocks: makeBlocks(imported, byScope), method: 'scopes', cuts };
  return { blocks: makeBlocks(imported, fallback.bounds), method: fallback.method, cuts };
}

interface Bound {
  output: string;
  name: string;
}

/** Turns boundary tensors (in order, the last = feature) into blocks. */
function makeBlocks(imported: ImportedModel, bounds: Bound[]): SplitBlock[] {
  const g = imported.model.graph;
  const nodes = imported.bodyNodes;
  const producerIndex = new Map<string, number>();
  nodes.forEach((n, i) => n.outputs.forEach((o) => o && producerIndex.set(o, i)));
  const producers = g.producers();
  const blocks: SplitBlock[] = [];
  let start = 0;
  let input = imported.input;
  bounds.forEach((b, k) => {
    const end = producerIndex.get(b.output);
    if (end === undefined) throw new BlockSpecError(`tensor '${b.output}' is not produced by the feature extractor`);
    const own = nodes.slice(start, end + 1);
    const trainable = nodeParams(g, own, producers);
    blocks.push({
      index: k,
      name: b.name,
      input,
      output: b.output,
      nodes: own,
      trainable,
      paramCount: countElements(g, trainable),
      state: nodeBuffers(g, own),
      outputShape: imported.shapes.get(b.output)?.dims,
    });
    start = end + 1;
    input = b.output;
  });
  // Nodes after the feature tensor's producer that are not in the head (shape side-computations) join the last block.
  if (start < nodes.length && blocks.length) blocks[blocks.length - 1]!.nodes.push(...nodes.slice(start));
  return blocks;
}

/** Rule 1 (module scopes). Returns undefined when the graph has too few scoped nodes. */
function scopeBoundaries(imported: ImportedModel): Bound[] | undefined {
  const body = imported.bodyNodes;
  const paths = body.map(scopePath);
  if (paths.filter((p) => p && p.length > 0).length < body.length / 2) return undefined;
  const prefix: string[] = [];
  const within = (p: string[] | undefined) => !!p && p.length > prefix.length && prefix.every((s, i) => p[i] === s);
  for (;;) {
    const L = prefix.length;
    const containers = new Set<string>();
    for (const p of paths) if (within(p) && p!.length > L + 1) containers.add(p![L]!);
    if (containers.size !== 1) break;
    prefix.push([...containers][0]!);
  }
  const L = prefix.length;
  type Run = { key: string; kind: 'container' | 'leaf' | 'loose'; from: number; to: number; linear: boolean };
  const runs: Run[] = [];
  body.forEach((n, i) => {
    const p = paths[i];
    const kind: Run['kind'] = within(p) ? (p!.length > L + 1 ? 'container' : 'leaf') : 'loose';
    const key = kind === 'loose' ? '' : p![L]!;
    const last = runs[runs.length - 1];
    const linear = LINEAR_OPS.has(n.opType);
    if (last && last.key === key && last.kind === kind) {
      last.to = i;
      last.linear ||= linear;
    } else runs.push({ key, kind, from: i, to: i, linear });
  });
  const hasContainers = runs.some((r) => r.kind === 'container');
  const groups: { name: string; from: number; to: number }[] = [];
  for (const r of runs) {
    const prev = groups[groups.length - 1];
    if (hasContainers) {
      if (r.kind === 'container') {
        if (prev && prev.name === r.key) prev.to = r.to;
        else groups.push({ name: r.key, from: r.from, to: r.to });
      } else if (!prev || prev.name === 'stem') {
        if (prev) prev.to = r.to;
        else groups.push({ name: 'stem', from: r.from, to: r.to });
      } else prev.to = r.to;
    } else if (r.linear || !prev) groups.push({ name: r.key || `block${groups.length}`, from: r.from, to: r.to });
    else prev.to = r.to;
  }
  // A leading parameter-free group (flat models) joins the next one.
  if (!hasContainers && groups.length > 1 && !body.slice(groups[0]!.from, groups[0]!.to + 1).some((n) => LINEAR_OPS.has(n.opType))) {
    groups[1]!.from = groups[0]!.from;
    groups.shift();
  }
  // Merge neighbours until each boundary is a single tensor.
  const out: Bound[] = [];
  let mergedFrom: string | undefined;
  for (let k = 0; k < groups.length; k++) {
    const grp = groups[k]!;
    const name = mergedFrom ? `${mergedFrom}..${grp.name}` : grp.name;
    if (k === groups.length - 1) {
      out.push({ output: imported.feature, name });
      break;
    }
    const crossing = crossingValues(imported, grp.to);
    if (crossing.length === 1) {
      out.push({ output: crossing[0]!, name });
      mergedFrom = undefined;
    } else mergedFrom ??= grp.name;
  }
  return out;
}

/** Non-constant values produced at body index ≤ `end` (or the input) and read after it. */
function crossingValues(imported: ImportedModel, end: number): string[] {
  const g = imported.model.graph;
  const body = imported.bodyNodes;
  const before = new Set<string>([imported.input]);
  for (let i = 0; i <= end; i++) for (const o of body[i]!.outputs) if (o) before.add(o);
  const out = new Set<string>();
  for (let i = end + 1; i < body.length; i++) for (const v of body[i]!.inputs) if (v && before.has(v) && !g.initializers.has(v)) out.add(v);
  if (before.has(imported.feature)) out.add(imported.feature);
  return [...out];
}

/** Rule 2 (no scopes): boundaries from the cuts. */
function cutBoundaries(imported: ImportedModel, cuts: string[]): { bounds: Bound[]; method: SplitMethod } {
  const g = imported.model.graph;
  const body = imported.bodyNodes;
  const index = new Map<Node, number>(body.map((n, i) => [n, i]));
  const producers = g.producers();
  const consumers = g.consumers();
  const cutSet = new Set(cuts);
  const cutPos = (v: string) => (v === imported.input ? -1 : index.get(producers.get(v)!) ?? -1);
  const residualAdds = body.filter(
    (n) => n.opType === 'Add' && n.inputs.length === 2 && n.inputs.every((i) => i && !g.initializers.has(i)) && n.inputs[0] !== n.inputs[1],
  );
  const chosen = new Set<string>();
  if (residualAdds.length) {
    for (const a of residualAdds) {
      const ai = index.get(a)!;
      let entry: string | undefined;
      for (const c of cuts) if (cutPos(c) < ai) entry = c;
      if (entry) chosen.add(entry);
      let v = a.outputs[0]!;
      if (!cutSet.has(v)) continue;
      for (;;) {
        const cs = consumers.get(v) ?? [];
        const next = cs.length === 1 && activationInput(cs[0]!, producers) === v ? cs[0]!.outputs[0]! : undefined;
        if (!next || !cutSet.has(next)) break;
        v = next;
      }
      chosen.add(v);
    }
    chosen.add(imported.feature);
    const ordered = cuts.filter((c) => chosen.has(c));
    return { bounds: ordered.map((c, i) => ({ output: c, name: i === 0 && ordered.length > 1 ? 'stem' : `block${i}` })), method: 'residual-cuts' };
  }
  // A chain: each segment between cuts holding a linear op starts a block; the others join the block before.
  const segLinear: boolean[] = [];
  let prev = -1;
  for (const c of cuts) {
    const end = cutPos(c);
    segLinear.push(body.slice(prev + 1, end + 1).some((n) => LINEAR_OPS.has(n.opType)));
    prev = end;
  }
  const ends: string[] = [];
  let seenLinear = false;
  cuts.forEach((c, i) => {
    // Close the current block at cut i when the next segment starts a new linear layer.
    seenLinear ||= segLinear[i]!;
    if (i === cuts.length - 1 || (seenLinear && segLinear[i + 1])) {
      ends.push(c);
      seenLinear = false;
    }
  });
  return { bounds: ends.map((c, i) => ({ output: c, name: `block${i}` })), method: 'conv-cuts' };
}
