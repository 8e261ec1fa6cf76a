/** Every op the gradient builder can differentiate, one rule per file in ./gradients/. */
import type { GradRule } from './types.js';
import { Abs } from './gradients/Abs.js';
import { Add } from './gradients/Add.js';
import { AveragePool } from './gradients/AveragePool.js';
import { BatchNormalization } from './gradients/BatchNormalization.js';
import { Cast } from './gradients/Cast.js';
import { Clip } from './gradients/Clip.js';
import { Concat } from './gradients/Concat.js';
import { Conv } from './gradients/Conv.js';
import { Div } from './gradients/Div.js';
import { Dropout } from './gradients/Dropout.js';
import { Erf } from './gradients/Erf.js';
import { Exp } from './gradients/Exp.js';
import { Expand } from './gradients/Expand.js';
import { Flatten } from './gradients/Flatten.js';
import { Gather } from './gradients/Gather.js';
import { GatherElements } from './gradients/GatherElements.js';
import { Gemm } from './gradients/Gemm.js';
import { GlobalAveragePool } from './gradients/GlobalAveragePool.js';
import { HardSigmoid } from './gradients/HardSigmoid.js';
import { HardSwish } from './gradients/HardSwish.js';
import { Identity } from './gradients/Identity.js';
import { LeakyRelu } from './gradients/LeakyRelu.js';
import { Log } from './gradients/Log.js';
import { LogSoftmax } from './gradients/LogSoftmax.js';
import { MatMul } from './gradients/MatMul.js';
import { Max } from './gradients/Max.js';
import { MaxPool } from './gradients/MaxPool.js';
import { Mean } from './gradients/Mean.js';
import { Min } from './gradients/Min.js';
import { Mul } from './gradients/Mul.js';
import { Neg } from './gradients/Neg.js';
import { Pad } from './gradients/Pad.js';
import { Pow } from './gradients/Pow.js';
import { Reciprocal } from './gradients/Reciprocal.js';
import { ReduceLogSumExp } from './gradients/ReduceLogSumExp.js';
import { ReduceMean } from './gradients/ReduceMean.js';
import { ReduceSum } from './gradients/ReduceSum.js';
import { Relu } from './gradients/Relu.js';
import { Reshape } from './gradients/Reshape.js';
import { Sigmoid } from './gradients/Sigmoid.js';
import { Slice } from './gradients/Slice.js';
import { Softmax } from './gradients/Softmax.js';
import { Softplus } from './gradients/Softplus.js';
import { Split } from './gradients/Split.js';
import { Sqrt } from './gradients/Sqrt.js';
import { Squeeze } from './gradients/Squeeze.js';
import { Sub } from './gradients/Sub.js';
import { Sum } from './gradients/Sum.js';
import { Tanh } from './gradients/Tanh.js';
import { Tile } from './gradients/Tile.js';
import { Transpose } from './gradients/Transpose.js';
import { Unsqueeze } from './gradients/Unsqueeze.js';
import { Where } from './gradients/Where.js';

export const gradientRules: Record<string, GradRule> = {
  // Layers (convolution, normalisation, pooling, dense).
  AveragePool,
  BatchNormalization,
  Conv,
  Gemm,
  GlobalAveragePool,
  MatMul,
  MaxPool,
  // Element-wise, reductions, shape and indexing ops.
  Add,
  Cast,
  Clip,
  Concat,
  Div,
  Dropout,
  Exp,
  Expand,
  Flatten,
  Gather,
  GatherElements,
  HardSigmoid,
  HardSwish,
  Identity,
  Log,
  LogSoftmax,
  Mul,
  Neg,
  Pad,
  Pow,
  ReduceLogSumExp,
  ReduceMean,
  ReduceSum,
  Relu,
  Reshape,
  Sigmoid,
  Slice,
  Softmax,
  Split,
  Sqrt,
  Squeeze,
  Sub,
  Sum,
  Tanh,
  Tile,
  Transpose,
  Unsqueeze,
  Where,
  // Further element-wise ops.
  Abs,
  Erf,
  LeakyRelu,
  Max,
  Mean,
  Min,
  Reciprocal,
  Softplus,
};

export function hasGradientRule(op: string): boolean {
  return Object.prototype.hasOwnProperty.call(gradientRules, op);
}
