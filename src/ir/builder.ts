/** Adds nodes and constants to a graph with unique, readable names. */
import type { Graph, Node } from './graph.js';
import { toAttrs, type AttrValue } from './attrs.js';
import { floatTensor, int64Tensor, type TensorData } from './tensor.js';

export interface NodeOptions {
  /** Number of outputs (default 1) or explicit output names ('' = unused optional output). */
  outputs?: number | string[];
  name?: string;
  domain?: string;
}

export class GraphBuilder {
  private readonly taken: Set<string>;
  private readonly counters = new Map<string, number>();

  constructor(
    readonly graph: Graph,
    /** Prefix for generated names, e.g. '/sff/block3'. */
    readonly prefix = '',
  ) {
    this.taken = graph.allNames();
    for (const n of graph.nodes) if (n.name) this.taken.add(n.name);
  }

  /** A name not yet used in the graph, derived from `base`. */
  unique(base: string): string {
    const stem = this.prefix ? `${this.prefix}/${base}` : base;
    if (!this.taken.has(stem)) {
      this.taken.add(stem);
      return stem;
    }
    let k = this.counters.get(stem) ?? 1;
    let name = `${stem}_${k}`;
    while (this.taken.has(name)) name = `${stem}_${++k}`;
    this.counters.set(stem, k + 1);
    this.taken.add(name);
    return name;
  }

  /** Appends a node; returns its output names. */
  node(opType: string, inputs: string[], attrs: Record<string, AttrValue | undefined> = {}, opts: NodeOptions = {}): string[] {
    const name = opts.name ? this.unique(opts.name) : this.unique(opType);
    const outs = Array.isArray(opts.outputs)
      ? opts.outputs
      : Array.from({ length: opts.outputs ?? 1 }, (_, i) => this.unique(`${name.split('/').pop()}_out${i === 0 ? '' : i}`));
    const node: Node = { name, opType, domain: opts.domain ?? '', inputs, outputs: outs, attrs: toAttrs(attrs) };
    this.graph.nodes.push(node);
    return outs;
  }

  /** Appends a single-output node; returns its output name. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue | undefined> = {}, name?: string): string {
    return this.node(opType, inputs, attrs, { name: name ?? opType })[0]!;
  }

  /** Adds a constant as an initializer (not trainable unless the caller says so). */
  initializer(t: TensorData): string {
    const name = this.taken.has(t.name) || !t.name ? this.unique(t.name || 'const') : (this.taken.add(t.name), t.name);
    this.graph.initializers.set(name, { ...t, name });
    return name;
  }

  constFloat(values: number[] | Float32Array, dims: number[] = values.length === 1 ? [] : [values.length], base = 'const'): string {
    const name = this.unique(base);
    this.graph.initializers.set(name, floatTensor(name, dims, values));
    return name;
  }

  constInt64(values: number[], dims: number[] = [values.length], base = 'shape'): string {
    const name = this.unique(base);
    this.graph.initializers.set(name, int64Tensor(name, dims, values));
    return name;
  }
}
