/**
 * What the pipeline's threads say to each other. Activations and inputs travel as transferred
 * ArrayBuffers (moved, not copied) that return to their sender once consumed; onnxruntime-node
 * rejects SharedArrayBuffer-backed tensors ("Invalid argument", as input and as preallocated
 * output), so shared memory is used only for the small "which block is running" cell.
 */
import type { MessagePort } from 'node:worker_threads';
import type { BlockState, BlockWeights } from '../runner.js';
import type { PlacementSummary } from '../../runtime/providers.js';

/** One block as a worker rebuilds it: its graphs, initial weights and learning rate. */
export interface WorkerBlock {
  /** Position in the run's block list (what metrics and errors use). */
  index: number;
  name: string;
  /** The flat parameter vector's layout, as (name, dims) in order. */
  layout: { name: string; dims: number[] }[];
  trainGraph: Uint8Array;
  /** Absent where only training steps are run (benchmarks). */
  evalGraph?: Uint8Array;
  params: Float32Array;
  state: { name: string; data: Float32Array; dims: number[] }[];
  /** Per-sample output shape (C, H, W), to preallocate the activation handed downstream. */
  outputShape: number[];
  lr: number;
}

/** Where one block's sessions run on a GPU device (empty on the CPU): train step and eval graph. */
export interface BlockPlacementReport {
  index: number;
  name: string;
  train?: PlacementSummary;
  eval?: PlacementSummary;
}

/** A fault injected by tests: the worker throws or exits when it reaches `block` at training step `step` (1-based). */
export interface InjectedFault {
  block: number;
  step: number;
  kind: 'throw' | 'exit';
}

export interface StageInit {
  stage: number;
  threads: number;
  device?: string;
  memArena?: boolean;
  blocks: WorkerBlock[];
  /** From the previous stage (or the coordinator for stage 0). */
  upstream: MessagePort;
  /** To the next stage; absent on the last stage, whose output nobody consumes. */
  downstream?: MessagePort;
  /** Int32 cell: index of the block this worker is running, −1 when idle (read when a worker dies). */
  running: SharedArrayBuffer;
  fault?: InjectedFault;
}

export type Mode = 'train' | 'eval';

/** A batch moving down the pipeline. */
export interface BatchMessage {
  type: 'batch';
  mode: Mode;
  /** Sequence number of the batch (the coordinator's, per pipeline). */
  seq: number;
  /** Training step counted from 1 within the run (fault injection, errors). */
  step: number;
  n: number;
  x: ArrayBuffer;
  dims: number[];
  labels?: BigInt64Array;
}

/** A consumed buffer going back up to its producer for reuse. */
export interface FreeMessage {
  type: 'free';
  buffer: ArrayBuffer;
}

export type DataMessage = BatchMessage | FreeMessage;

/** One stage's results for one batch, in block order. */
export interface ResultMessage {
  type: 'result';
  seq: number;
  first: number;
  losses: number[];
  goodness: Float32Array[];
}

export type ControlRequest =
  | { type: 'snapshot'; id: number }
  | { type: 'weights'; id: number }
  | { type: 'setWeights'; id: number; weights: BlockWeights[] }
  | { type: 'restore'; id: number; states: BlockState[] }
  | { type: 'setLr'; id: number; lrs: number[] }
  | { type: 'takeSeconds'; id: number }
  /** Finish the batch in hand, drop queued ones, release the sessions and let the thread end. */
  | { type: 'close' };

export type ControlReply =
  | { type: 'reply'; id: number; value: unknown }
  /** Sessions built; on a GPU device, where each block's nodes run (see createPlacedSession). */
  | { type: 'ready'; placements: BlockPlacementReport[] }
  | ResultMessage
  | { type: 'failed'; block: number; message: string; stack?: string };
