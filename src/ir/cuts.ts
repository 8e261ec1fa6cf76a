/**
 * Cuts of a DAG: values that every path from a source value to the target value(s) crosses.
 *
 * Only nodes on some source→target path count (constants and side branches are ignored). In a
 * topological order of those nodes, every node is an ancestor or a descendant of a cut value v,
 * so right after v's producer the set of "live" values (produced, still to be read) is exactly
 * {v}; conversely a single live value is crossed by every path. One pass with consumer counts
 * finds them all. A value read by several nodes (a residual fork) is a cut when nothing else is
 * live; the two branches of a residual Add are never cuts, since both are live at once.
 */
import { topologicalOrder, type Graph, type Node } from './graph.js';

export interface CutOptions {
  /** Source value (default: the graph's single feed input). */
  from?: string;
  /** Target value(s) (default: the graph outputs). */
  to?: string | string[];
}

/** Nodes on some path from `from` to any of `to`, in topological order. */
export function pathNodes(graph: Graph, from: string, to: string[]): Node[] {
  const order = topologicalOrder(graph.nodes, new Set([...graph.inputs.map((i) => i.name), ...graph.initializers.keys()]));
  const reach = new Set<string>([from]);
  const forward = new Set<Node>();
  for (const n of order)
    if (n.inputs.some((i) => i && reach.has(i))) {
      forward.add(n);
      for (const o of n.outputs) if (o) reach.add(o);
    }
  const back = new Set<string>(to);
  const both: Node[] = [];
  for (let k = order.length - 1; k >= 0; k--) {
    const n = order[k]!;
    if (!forward.has(n) || !n.outputs.some((o) => o && back.has(o))) continue;
    both.push(n);
    for (const i of n.inputs) if (i) back.add(i);
  }
  return both.reverse();
}

/**
 * Cut values from `from` to the target(s), in order from the source (the source itself is not
 * listed; a single target is always its own last cut).
 */
export function findCuts(graph: Graph, opts: CutOptions = {}): string[] {
  const feeds = graph.feedInputs();
  const from = opts.from ?? (feeds.length === 1 ? feeds[0]!.name : undefined);
  if (!from) throw new Error(`findCuts: the graph has ${feeds.length} inputs; name the source value`);
  const to = opts.to === undefined ? graph.outputs.map((o) => o.name) : Array.isArray(opts.to) ? opts.to : [opts.to];
  const nodes = pathNodes(graph, from, to);
  const remaining = new Map<string, number>();
  const relevant = new Set<string>([from]);
  for (const n of nodes) for (const o of n.outputs) if (o) relevant.add(o);
  for (const n of nodes) for (const i of n.inputs) if (i && relevant.has(i)) remaining.set(i, (remaining.get(i) ?? 0) + 1);
  for (const t of to) remaining.set(t, (remaining.get(t) ?? 0) + 1);
  const live = new Set<string>([from]);
  const cuts: string[] = [];
  for (const n of nodes) {
    for (const i of n.inputs) {
      if (!i || !live.has(i)) continue;
      const r = remaining.get(i)! - 1;
      remaining.set(i, r);
      if (r === 0) live.delete(i);
    }
    for (const o of n.outputs) if (o && (remaining.get(o) ?? 0) > 0) live.add(o);
    if (live.size === 1) {
      const v = live.values().next().value as string;
      if (v !== from && cuts[cuts.length - 1] !== v) cuts.push(v);
    }
  }
  return cuts;
}
