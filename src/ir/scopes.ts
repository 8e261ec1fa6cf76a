/** Module scopes of exported nodes: where in the PyTorch module tree a node came from. */
import type { Node } from './graph.js';

/**
 * The module path of a node, or undefined when the export has none.
 * - legacy TorchScript exports name nodes `/layer1/layer1.0/conv1/Conv`: path [layer1, layer1.0, conv1]
 *   (the last component is the op); `/Flatten` gives [] (a functional op at the root);
 * - dynamo exports (torch ≥ 2.5) carry `pkg.torch.onnx.name_scopes` in the node's metadata_props,
 *   e.g. "['', 'layer1', 'layer1.0', 'conv1']";
 * - TFLite-derived and hand-built graphs (`t2`, `Conv_0`) have no scopes.
 */
export function scopePath(node: Node): string[] | undefined {
  const props = node.extra?.metadataProps as { key?: string; value?: string }[] | undefined;
  const ns = props?.find((p) => p.key?.endsWith('name_scopes'));
  if (ns?.value) {
    const parts = [...ns.value.matchAll(/'([^']*)'|"([^"]*)"/g)].map((m) => m[1] ?? m[2] ?? '').filter(Boolean);
    return parts;
  }
  if (!node.name.startsWith('/')) return undefined;
  const parts = node.name.split('/').filter(Boolean);
  return parts.slice(0, -1);
}
