/**
 * The main thread's side of pipelined block training: starts one worker per stage, feeds batches
 * into stage 0, collects every block's loss and goodness per batch (in batch order), and talks to
 * the workers' runners for checkpoints, best weights and learning rates. A worker that throws,
 * crashes or exits fails every pending call with a PipelineWorkerError naming the block — the
 * run stops instead of waiting for a batch that will never come.
 */
import { MessageChannel, Worker } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { BlockState, BlockWeights } from '../runner.js';
import type { BatchResult } from '../blockExecutor.js';
import type { StagePlan } from './plan.js';
import { numElements } from '../../ir/tensor.js';
import type { BatchMessage, BlockPlacementReport, ControlReply, ControlRequest, DataMessage, InjectedFault, Mode, StageInit, WorkerBlock } from './messages.js';

export class PipelineWorkerError extends Error {
  override name = 'PipelineWorkerError';
  constructor(
    message: string,
    /** Index of the block that was running (−1: the worker was between blocks). */
    readonly block: number,
  ) {
    super(message);
  }
}


interface Pending {
  result: BatchResult;
  remaining: number;
  resolve: (r: BatchResult) => void;
  reject: (e: Error) => void;
}

export interface PipelineOptions {
  device?: string;
  memArena?: boolean;
  /** Test hook: make a worker throw or exit at a given block and step. */
  fault?: InjectedFault;
}

const workerFile = fileURLToPath(new URL('./worker.js', import.meta.url));

export class BlockPipeline {
  private readonly pending = new Map<number, Pending>();
  private readonly requests = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  /** Replies of broadcast requests so far, per stage. */
  private readonly replies = new Map<number, unknown[]>();
  private readonly readyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private readyCount = 0;
  /** Per block, in block order once every worker is ready: where its sessions run (GPU devices). */
  readonly placements: BlockPlacementReport[] = [];
  private readonly input: MessageChannel;
  /** Input buffers given back by stage 0. */
  private readonly spare: ArrayBuffer[] = [];
  private seq = 0;
  private nextId = 0;
  private failure?: PipelineWorkerError;
  private closing = false;
  private closed: Promise<void> = Promise.resolve();
  /** Workers whose thread has ended. */
  private readonly exited: boolean[];

  private constructor(
    readonly plan: StagePlan[],
    readonly names: string[],
    private readonly workers: Worker[],
    private readonly running: Int32Array[],
    input: MessageChannel,
  ) {
    this.input = input;
    this.exited = workers.map(() => false);
    input.port1.on('message', (m: DataMessage) => {
      if (m.type === 'free') this.spare.push(m.buffer);
    });
    workers.forEach((w, s) => {
      w.on('message', (m: ControlReply) => this.onMessage(s, m));
      w.on('error', (e) => this.fail(s, `threw ${e instanceof Error ? e.message : String(e)}`));
      w.on('exit', (code) => {
        this.exited[s] = true;
        if (!this.closing) this.fail(s, `exited (code ${code})`);
      });
    });
  }

  /** Batches that can be in flight at once: one per stage, plus one being prepared. */
  get depth(): number {
    return this.plan.length + 1;
  }

  /** Starts the workers and waits until every one has built its sessions. */
  static async start(blocks: WorkerBlock[], plan: StagePlan[], opts: PipelineOptions = {}): Promise<BlockPipeline> {
    if (!existsSync(workerFile))
      throw new Error(`the pipeline worker ${workerFile} is missing: run from the compiled dist/ (npx tsc -p tsconfig.json), or use --pipeline off`);
    const input = new MessageChannel();
    const links = plan.slice(1).map(() => new MessageChannel());
    const running = plan.map(() => new Int32Array(new SharedArrayBuffer(4)).fill(-1));
    const workers = plan.map((stage, s) => {
      const upstream = s === 0 ? input.port2 : links[s - 1]!.port2;
      const downstream = s < plan.length - 1 ? links[s]!.port1 : undefined;
      const stageBlocks = blocks.slice(stage.first, stage.last + 1);
      const init: StageInit = {
        stage: s,
        threads: stage.threads,
        ...(opts.device ? { device: opts.device } : {}),
        ...(opts.memArena !== undefined ? { memArena: opts.memArena } : {}),
        blocks: stageBlocks,
        upstream,
        ...(downstream ? { downstream } : {}),
        running: running[s]!.buffer as SharedArrayBuffer,
        ...(opts.fault ? { fault: opts.fault } : {}),
      };
      return new Worker(workerFile, { workerData: init, transferList: [upstream, ...(downstream ? [downstream] : [])] });
    });
    const pipeline = new BlockPipeline(
      plan,
      blocks.map((b) => b.name),
      workers,
      running,
      input,
    );
    await pipeline.ready();
    return pipeline;
  }

  private ready(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.readyWaiters.push({ resolve, reject });
    });
  }

  private onMessage(stage: number, m: ControlReply): void {
    if (m.type === 'ready') {
      this.placements.push(...m.placements);
      this.placements.sort((a, b) => a.index - b.index);
      if (++this.readyCount === this.workers.length) for (const w of this.readyWaiters.splice(0)) w.resolve();
    } else if (m.type === 'reply') {
      const r = this.requests.get(m.id);
      if (!r) return;
      if (this.countReply(m.id, stage, m.value)) {
        this.requests.delete(m.id);
        r.resolve(this.replies.get(m.id));
        this.replies.delete(m.id);
      }
    } else if (m.type === 'result') {
      const p = this.pending.get(m.seq);
      if (!p) return;
      m.losses.forEach((l, i) => (p.result.losses[m.first + i] = l));
      m.goodness.forEach((g, i) => (p.result.goodness[m.first + i] = g));
      if (--p.remaining === 0) {
        this.pending.delete(m.seq);
        p.resolve(p.result);
      }
    } else if (m.type === 'failed') {
      this.fail(stage, `failed: ${m.message}`, m.block, m.stack);
    }
  }

  /** Gathers a broadcast request's replies per stage; true once every stage answered. */
  private countReply(id: number, stage: number, value: unknown): boolean {
    const all = this.replies.get(id) ?? new Array(this.workers.length).fill(undefined);
    all[stage] = value;
    this.replies.set(id, all);
    return all.every((v) => v !== undefined);
  }

  private fail(stage: number, what: string, block = this.running[stage]![0]!, stack?: string): void {
    if (this.failure || this.closing) return;
    const s = this.plan[stage]!;
    const where = block >= 0 ? `block ${block} (${this.names[block]})` : `blocks ${s.first}–${s.last} (between blocks)`;
    this.failure = new PipelineWorkerError(`the pipeline worker running ${where} ${what}`, block);
    if (stack && process.env.SFF_DEBUG) this.failure.stack = stack;
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
    for (const r of this.requests.values()) r.reject(this.failure);
    this.requests.clear();
    for (const w of this.readyWaiters.splice(0)) w.reject(this.failure);
    void this.close();
  }

  /**
   * Sends one batch into the pipeline; resolves with every block's result once the last stage is
   * done with it. `x` is copied once into a buffer that then moves from thread to thread.
   */
  submit(mode: Mode, x: Float32Array, dims: number[], n: number, step: number, labels?: BigInt64Array): Promise<BatchResult> {
    if (this.failure) return Promise.reject(this.failure);
    const bytes = n * numElements(dims) * 4;
    const i = this.spare.findIndex((b) => b.byteLength >= bytes);
    const buffer = i >= 0 ? this.spare.splice(i, 1)[0]! : new ArrayBuffer(bytes);
    new Float32Array(buffer, 0, bytes / 4).set(x.subarray(0, bytes / 4));
    const seq = this.seq++;
    const K = this.names.length;
    const promise = new Promise<BatchResult>((resolve, reject) =>
      this.pending.set(seq, { result: { losses: new Array(K), goodness: new Array(K) }, remaining: this.plan.length, resolve, reject }),
    );
    const msg: BatchMessage = { type: 'batch', mode, seq, step, n, x: buffer, dims, ...(labels ? { labels: labels.slice(0, n) } : {}) };
    this.input.port1.postMessage(msg, [buffer]);
    // A failure rejects every batch in flight; the caller awaits them one by one and stops at the
    // first, so the others must not count as unhandled rejections.
    promise.catch(() => {});
    return promise;
  }

  /** Sends a request to every stage; resolves with their answers concatenated in block order. */
  private broadcast<T>(make: (stage: StagePlan, id: number) => ControlRequest): Promise<T[]> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const promise = new Promise<unknown>((resolve, reject) => this.requests.set(id, { resolve, reject }));
    promise.catch(() => {});
    this.workers.forEach((w, s) => w.postMessage(make(this.plan[s]!, id)));
    return promise.then((perStage) => (perStage as T[][]).flat());
  }

  snapshot(): Promise<BlockState[]> {
    return this.broadcast((_, id) => ({ type: 'snapshot', id }));
  }

  weights(): Promise<BlockWeights[]> {
    return this.broadcast((_, id) => ({ type: 'weights', id }));
  }

  async setWeights(weights: BlockWeights[]): Promise<void> {
    await this.broadcast((s, id) => ({ type: 'setWeights', id, weights: weights.slice(s.first, s.last + 1) }));
  }

  async restore(states: BlockState[]): Promise<void> {
    await this.broadcast((s, id) => ({ type: 'restore', id, states: states.slice(s.first, s.last + 1) }));
  }

  async setLr(lrs: number[]): Promise<void> {
    await this.broadcast((s, id) => ({ type: 'setLr', id, lrs: lrs.slice(s.first, s.last + 1) }));
  }

  /** Each block's busy seconds since the last call. */
  takeSeconds(): Promise<number[]> {
    return this.broadcast((_, id) => ({ type: 'takeSeconds', id }));
  }

  /**
   * Stops every worker (idempotent): each finishes the batch in hand, releases its sessions and
   * ends; one that has not ended after `graceMs` (a step that never returns) is terminated.
   */
  async close(graceMs = 60_000): Promise<void> {
    if (this.closing) return this.closed;
    this.closing = true;
    this.input.port1.close();
    this.closed = Promise.all(
      this.workers.map(async (w, s) => {
        if (this.exited[s]) return;
        const ended = new Promise<void>((resolve) => w.once('exit', () => resolve()));
        w.postMessage({ type: 'close' } satisfies ControlRequest);
        const timer = setTimeout(() => void w.terminate(), graceMs);
        await ended;
        clearTimeout(timer);
      }),
    ).then(() => undefined);
    return this.closed;
  }
}
