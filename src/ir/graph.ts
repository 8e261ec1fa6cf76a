/**
 * The graph IR: a mutable, typed view of an ONNX graph that every later stage
 * (import, block splitting, autodiff, training graphs, export) edits.
 */
import type { TensorData } from './tensor.js';

export type Dim = number | string | null;

export interface TensorType {
  kind: 'tensor';
  elemType: number;
  /** undefined = rank unknown. */
  shape?: Dim[];
}
/** Sequence/map/optional/sparse types are carried through untouched as decoded protobuf objects. */
export interface OpaqueType {
  kind: 'opaque';
  proto: unknown;
}
export type ValueType = TensorType | OpaqueType;

export interface ValueInfo {
  name: string;
  type?: ValueType;
  docString?: string;
}

export type Attr =
  | { type: 'float'; value: number }
  | { type: 'int'; value: number }
  | { type: 'string'; value: string }
  | { type: 'tensor'; value: TensorData }
  | { type: 'graph'; value: Graph }
  | { type: 'floats'; value: number[] }
  | { type: 'ints'; value: number[] }
  | { type: 'strings'; value: string[] }
  | { type: 'tensors'; value: TensorData[] }
  | { type: 'graphs'; value: Graph[] }
  /** sparse tensors, type protos, attribute references in functions: kept as decoded. */
  | { type: 'opaque'; value: unknown };

export interface Node {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, Attr>;
  docString?: string;
  /** Fields this tool never edits (metadata_props, overload), kept for the round trip. */
  extra?: Record<string, unknown>;
}

export interface OpsetImport {
  domain: string;
  version: number;
}

export class Graph {
  name = '';
  nodes: Node[] = [];
  initializers = new Map<string, TensorData>();
  inputs: ValueInfo[] = [];
  outputs: ValueInfo[] = [];
  valueInfo = new Map<string, ValueInfo>();
  docString = '';
  /** sparse_initializer, quantization_annotation, metadata_props: carried untouched. */
  extra: Record<string, unknown> = {};

  /** The node producing each value. */
  producers(): Map<string, Node> {
    const m = new Map<string, Node>();
    for (const n of this.nodes) for (const o of n.outputs) if (o) m.set(o, n);
    return m;
  }

  /** The nodes consuming each value (a node appears once per input slot using it). */
  consumers(): Map<string, Node[]> {
    const m = new Map<string, Node[]>();
    for (const n of this.nodes)
      for (const i of n.inputs) {
        if (!i) continue;
        let list = m.get(i);
        if (!list) m.set(i, (list = []));
        list.push(n);
      }
    // Sub-graphs may read outer-scope values implicitly.
    for (const n of this.nodes)
      for (const name of outerScopeReads(n)) {
        let list = m.get(name);
        if (!list) m.set(name, (list = []));
        list.push(n);
      }
    return m;
  }

  isInitializer(name: string): boolean {
    return this.initializers.has(name);
  }

  /** Graph inputs that are not initializers (the real feeds). */
  feedInputs(): ValueInfo[] {
    return this.inputs.filter((i) => !this.initializers.has(i.name));
  }

  /** Sorts `nodes` topologically (stable: keeps the original order where it is valid). */
  topoSort(): void {
    this.nodes = topologicalOrder(this.nodes, new Set([...this.inputs.map((i) => i.name), ...this.initializers.keys()]));
  }

  /** Every value name used anywhere (for making unique names). */
  allNames(): Set<string> {
    const s = new Set<string>();
    for (const i of this.inputs) s.add(i.name);
    for (const o of this.outputs) s.add(o.name);
    for (const k of this.initializers.keys()) s.add(k);
    for (const n of this.nodes) {
      for (const v of n.inputs) if (v) s.add(v);
      for (const v of n.outputs) if (v) s.add(v);
    }
    return s;
  }

  tensorType(name: string): TensorType | undefined {
    const vi = this.valueInfo.get(name) ?? this.inputs.find((i) => i.name === name) ?? this.outputs.find((o) => o.name === name);
    if (vi?.type?.kind === 'tensor') return vi.type;
    const init = this.initializers.get(name);
    if (init) return { kind: 'tensor', elemType: init.dataType, shape: [...init.dims] };
    return undefined;
  }
}

/** Names a node's sub-graphs read from the enclosing scope. */
export function outerScopeReads(n: Node): string[] {
  const out: string[] = [];
  for (const a of Object.values(n.attrs)) {
    const graphs = a.type === 'graph' ? [a.value] : a.type === 'graphs' ? a.value : [];
    for (const g of graphs) {
      const local = new Set<string>([...g.inputs.map((i) => i.name), ...g.initializers.keys()]);
      for (const sn of g.nodes) for (const o of sn.outputs) local.add(o);
      for (const sn of g.nodes) {
        for (const i of sn.inputs) if (i && !local.has(i)) out.push(i);
        out.push(...outerScopeReads(sn).filter((x) => !local.has(x)));
      }
    }
  }
  return out;
}

export function topologicalOrder(nodes: Node[], available: Set<string>): Node[] {
  const have = new Set(available);
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => n.outputs.forEach((o) => o && producer.set(o, i)));
  const deps = nodes.map((n) => {
    const d = new Set<number>();
    for (const i of [...n.inputs, ...outerScopeReads(n)]) {
      if (!i || have.has(i)) continue;
      const p = producer.get(i);
      if (p !== undefined) d.add(p);
    }
    return d;
  });
  const done = new Array<boolean>(nodes.length).fill(false);
  const order: Node[] = [];
  const visiting = new Array<boolean>(nodes.length).fill(false);
  const visit = (i: number) => {
    if (done[i]) return;
    // Iterative DFS so deep chains (hundreds of nodes) cannot overflow the stack.
    const stack: [number, number[]][] = [[i, [...deps[i]!]]];
    visiting[i] = true;
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const next = top[1].pop();
      if (next === undefined) {
        stack.pop();
        visiting[top[0]] = false;
        if (!done[top[0]]) {
          done[top[0]] = true;
          order.push(nodes[top[0]]!);
        }
        continue;
      }
      if (done[next]) continue;
      if (visiting[next]) throw new Error(`graph has a cycle through node '${nodes[next]!.name}' (${nodes[next]!.opType})`);
      visiting[next] = true;
      stack.push([next, [...deps[next]!].reverse()]);
    }
  };
  for (let i = 0; i < nodes.length; i++) visit(i);
  return order;
}

export interface Model {
  irVersion: number;
  opsetImports: OpsetImport[];
  producerName: string;
  producerVersion: string;
  domain: string;
  modelVersion: number;
  docString: string;
  metadata: { key: string; value: string }[];
  graph: Graph;
  /** FunctionProto and TrainingInfoProto entries, kept exactly as decoded. */
  functions: unknown[];
  trainingInfo: unknown[];
}

export function opsetVersion(model: Model, domain = ''): number {
  const d = domain === 'ai.onnx' ? '' : domain;
  const o = model.opsetImports.find((x) => (x.domain === 'ai.onnx' ? '' : x.domain) === d);
  return o?.version ?? 0;
}

export function getMetadata(model: Model, key: string): string | undefined {
  return model.metadata.find((m) => m.key === key)?.value;
}

export function setMetadata(model: Model, key: string, value: string): void {
  const m = model.metadata.find((x) => x.key === key);
  if (m) m.value = value;
  else model.metadata.push({ key, value });
}

/** Wraps a graph as a model of the default ai.onnx opset. */
export function makeModel(graph: Graph, opset = 17, extra: Partial<Model> = {}): Model {
  return {
    irVersion: opset >= 21 ? 10 : opset >= 19 ? 9 : 8,
    opsetImports: [{ domain: '', version: opset }],
    producerName: 'sff-finetune',
    producerVersion: '0.1.0',
    domain: '',
    modelVersion: 0,
    docString: '',
    metadata: [],
    graph,
    functions: [],
    trainingInfo: [],
    ...extra,
  };
}
