/** Where a node sits, for error messages: its module scope, which decides its SFF block under `--blocks auto`. */
import type { Node } from '../../ir/graph.js';
import { scopePath } from '../../ir/scopes.js';

/** " in module 'layer1/layer1.0/bn1'" or "" for graphs without module scopes. */
export function scopeOf(node: Node): string {
  const path = scopePath(node);
  return path?.length ? ` in module '${path.join('/')}'` : '';
}
