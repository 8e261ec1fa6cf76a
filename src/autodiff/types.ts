/**
 * The contract between the gradient builder and the per-op gradient rules
 * (one file per op in ./gradients/).
 */
import type { GraphBuilder } from '../ir/builder.js';
import type { Node } from '../ir/graph.js';

/**
 * The execution provider a graph is built for. 'cpu': onnxruntime's CPU EP, which runs every op
 * the gradient rules emit. 'webgpu' and 'cuda': GPU EPs lacking some ops or modes, for which
 * equivalents are emitted instead (see lowering.ts and the rules that read `target`).
 */
export type GraphTarget = 'cpu' | 'webgpu' | 'cuda';

export interface GradContext {
  /** Appends backward nodes (names are made unique under the builder's prefix). */
  readonly b: GraphBuilder;
  /** The forward node whose input gradients are wanted. */
  readonly node: Node;
  /** Opset of the ai.onnx domain the graph is built for. */
  readonly opset: number;
  /** Gradient of the loss w.r.t. output `i` of `node`, or undefined when none flows back. */
  gradOutput(i: number): string | undefined;
  /** Whether input `i`'s gradient is needed (a trainable, or on a path to one). */
  needsGrad(i: number): boolean;
  /** Static shape of any forward value (the training graph has a fixed batch size). */
  shape(value: string): number[];
  /** ONNX element type of any forward value. */
  elemType(value: string): number;
  /** Constant value of an initializer / folded constant input, if the value is one. */
  constant(value: string): number[] | undefined;
  /** The execution provider the graph is built for: a rule emits only ops it runs. */
  readonly target: GraphTarget;
}

/**
 * Returns one gradient value name per forward input (undefined where the input
 * gets no gradient: not needed, integer, or non-differentiable).
 */
export type GradRule = (ctx: GradContext) => (string | undefined)[];

/** Raised when a block holds an op without a rule: names node, op and block. */
export class NoGradientRuleError extends Error {
  constructor(
    readonly nodeName: string,
    readonly opType: string,
    readonly block?: string,
  ) {
    super(
      `no gradient rule for op ${opType} (node '${nodeName}'${block ? `, in block ${block}` : ''}). ` +
        `Freeze that block (--freeze ${block ?? '<block>'}) so it runs forward only, or choose cuts that leave the op out of trained blocks.`,
    );
    this.name = 'NoGradientRuleError';
  }
}
