/**
 * The contract between the gradient builder and the per-op gradient rules
 * (one file per op in ./gradients/).
 */
import type { GraphBuilder } from '../ir/builder.js';
import type { Node } from '../ir/graph.js';

/**
 * Depthwise Conv weight gradient (group = C_in, multiplier 1); the formulations are described in
 * gradients/Conv.ts. All give the same gradient; they differ in speed per shape.
 */
export type DepthwiseWeightForm = 'im2col-mul' | 'grouped-conv' | 'grouped-conv-c' | 'im2col-matmul' | 'row-matmul';
/** Ordinary/grouped Conv weight gradient (gradients/Conv.ts). */
export type ConvWeightForm = 'auto' | 'per-tap' | 'concat' | 'batched' | 'conv' | 'conv-dy';
/** Strided Conv input gradient (gradients/Conv.ts). */
export type StridedInputForm = 'auto' | 'convtranspose' | 'zero-insert';

/**
 * MaxPool input gradient (gradients/MaxPool.ts): 'scatter' (dY scattered onto the arg-max
 * indices), 'mask' (dY broadcast over each window where X equals the window's maximum, first
 * maximum only — windows that tile the input only), 'auto' (mask where it applies).
 */
export type MaxPoolInputForm = 'auto' | 'scatter' | 'mask';

/**
 * Where Relu's and Clip's input gradient reads its mask: 'input' (x > 0, lo < x < hi) or
 * 'output' (y > 0, lo < y < hi: the same mask, since y is x clipped). Reading the output leaves
 * the producer's value with one consumer, the activation, so onnxruntime can fuse a Conv with
 * the Relu/Clip after it (FusedConv) in the training forward, as it does at inference, and the
 * pre-activation need not stay alive until the backward pass. Measured a tie (speed and peak RSS,
 * bench/README.md), so the default stays 'input'.
 */
export type ActivationMaskForm = 'input' | 'output';

/**
 * Which of several equivalent formulations a rule emits where an op's gradient has more than
 * one: the maths is the same, the speed depends on shapes and runtime. Chosen per
 * `buildGradients` call, so a bench can build variants side by side in one process.
 */
export interface GradFormulations {
  depthwiseWeight: DepthwiseWeightForm;
  convWeight: ConvWeightForm;
  stridedConvInput: StridedInputForm;
  maxPoolInput: MaxPoolInputForm;
  activationMask: ActivationMaskForm;
}

/** The formulations that measured fastest on the bench (bench/README.md, README "Where the time goes"). */
export const DEFAULT_FORMULATIONS: Readonly<GradFormulations> = Object.freeze({
  depthwiseWeight: 'grouped-conv',
  convWeight: 'auto',
  stridedConvInput: 'convtranspose',
  maxPoolInput: 'scatter',
  activationMask: 'input',
});

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
  /** The formulation to emit where a rule has several. */
  readonly formulations: Readonly<GradFormulations>;
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
