/** Errors the importer raises; each message names the nodes involved and says what to do. */
import type { Node } from '../ir/graph.js';
import { scopeOf } from './passes/where.js';

/** The graph uses ops this tool has no rules for. Lists every offending node, not only the first. */
export class UnsupportedOpError extends Error {
  readonly nodes: { name: string; opType: string; domain: string }[];
  constructor(nodes: Node[], why = 'is not supported by sff-finetune') {
    const list = nodes.map((n) => ({ name: n.name, opType: n.opType, domain: n.domain }));
    const byOp = new Map<string, string[]>();
    for (const n of nodes) {
      const op = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}::${n.opType}` : n.opType;
      const names = byOp.get(op) ?? [];
      names.push(`'${n.name || '<unnamed>'}'${scopeOf(n)}`);
      byOp.set(op, names);
    }
    const parts = [...byOp].map(([op, names]) => `${op} (node${names.length > 1 ? 's' : ''} ${names.slice(0, 5).join(', ')}${names.length > 5 ? `, … ${names.length - 5} more` : ''})`);
    // No --freeze advice: a frozen block still runs forward, and an op refused here cannot run at all.
    super(
      `unsupported op${byOp.size > 1 ? 's' : ''}: ${parts.join('; ')} ${why}. Re-export the model without ${byOp.size > 1 ? 'these ops' : 'this op'} ` +
        '(replace it with a supported equivalent): every node of the graph must be importable; `sff-finetune inspect` lists what a model needs.',
    );
    this.name = 'UnsupportedOpError';
    this.nodes = list;
  }
}

/** The graph is readable but has a structure the importer cannot use (no image input, no spatial feature map, …). */
export class ImportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImportError';
  }
}
