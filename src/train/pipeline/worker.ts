/**
 * Entry of one pipeline worker thread: it owns a contiguous run of blocks, with their own
 * onnxruntime sessions at its own thread count, and processes the batches that arrive from
 * upstream in order — each block's train (or eval) step, then the last block's output handed
 * downstream as a transferred buffer and the consumed input given back upstream.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { float32Tensor, imagesTensor, labelsTensor, type Tensor } from '../../runtime/tensors.js';
import type { BlockRunner } from '../runner.js';
import { runnerFor } from './blocks.js';
import { numElements } from '../../ir/tensor.js';
import type { BatchMessage, BlockPlacementReport, ControlReply, ControlRequest, DataMessage, StageInit } from './messages.js';

const init = workerData as StageInit;
const port = parentPort!;
const running = new Int32Array(init.running);
const post = (m: ControlReply, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

const runners: BlockRunner[] = [];
const seconds: number[] = init.blocks.map(() => 0);
/** Output buffers handed downstream and given back, ready for reuse. */
const spare: ArrayBuffer[] = [];
let broken = false;

function outputBuffer(bytes: number): ArrayBuffer {
  const i = spare.findIndex((b) => b.byteLength >= bytes);
  return i >= 0 ? spare.splice(i, 1)[0]! : new ArrayBuffer(bytes);
}

function injectFault(block: number, step: number, mode: string): void {
  const f = init.fault;
  if (!f || mode !== 'train' || f.block !== block || f.step !== step) return;
  if (f.kind === 'exit') process.exit(7);
  throw new Error(`injected fault (test hook) in block ${block} at step ${step}`);
}

async function runBatch(m: BatchMessage, upstream: MessagePort, downstream: MessagePort | undefined): Promise<void> {
  let x: Tensor = imagesTensor(new Float32Array(m.x), m.n, m.dims);
  const labels = m.labels ? labelsTensor(m.labels, m.n) : undefined;
  const losses: number[] = [];
  const goodness: Float32Array[] = [];
  let out: { buffer: ArrayBuffer; dims: number[] } | undefined;
  for (let i = 0; i < runners.length; i++) {
    const b = init.blocks[i]!;
    running[0] = b.index;
    injectFault(b.index, m.step, m.mode);
    // The stage's last block writes straight into the buffer that travels downstream.
    let into: Tensor | undefined;
    if (downstream && i === runners.length - 1) {
      const per = numElements(b.outputShape);
      out = { buffer: outputBuffer(m.n * per * 4), dims: b.outputShape };
      into = float32Tensor(new Float32Array(out.buffer, 0, m.n * per), [m.n, ...b.outputShape]);
    }
    const t0 = performance.now();
    const r = m.mode === 'train' ? await runners[i]!.trainStep(x, labels!, into) : await runners[i]!.evaluate(x, into);
    seconds[i]! += (performance.now() - t0) / 1000;
    losses.push('loss' in r ? (r.loss as number) : NaN);
    goodness.push(Float32Array.from(r.goodness));
    x = r.next;
  }
  running[0] = -1;
  upstream.postMessage({ type: 'free', buffer: m.x } satisfies DataMessage, [m.x]);
  if (downstream && out) downstream.postMessage({ ...m, x: out.buffer, dims: out.dims } satisfies DataMessage, [out.buffer]);
  post({ type: 'result', seq: m.seq, first: init.blocks[0]!.index, losses, goodness }, goodness.map((g) => g.buffer as ArrayBuffer));
}

async function control(r: ControlRequest): Promise<unknown> {
  switch (r.type) {
    case 'snapshot':
      return runners.map((x) => x.snapshot());
    case 'weights':
      return runners.map((x) => x.weights());
    case 'setWeights':
      runners.forEach((x, i) => x.setWeights(r.weights[i]!));
      return null;
    case 'restore':
      runners.forEach((x, i) => x.restore(r.states[i]!));
      return null;
    case 'setLr':
      runners.forEach((x, i) => (x.lr = r.lrs[i]!));
      return null;
    case 'takeSeconds': {
      const s = [...seconds];
      seconds.fill(0);
      return s;
    }
    case 'close':
      return null;
  }
}

/**
 * Ends the thread by letting its event loop run dry: sessions released, ports closed. Terminating
 * a worker that still holds onnxruntime sessions can abort the whole process (a native exception
 * while the thread's environment is torn down), so the coordinator asks for this instead.
 */
function shutdown(): void {
  broken = true;
  void queue.finally(async () => {
    for (const r of runners) await r.release().catch(() => {});
    init.upstream.close();
    init.downstream?.close();
    port.close();
  });
}

function fail(e: unknown): void {
  if (broken) return;
  broken = true;
  const err = e instanceof Error ? e : new Error(String(e));
  post({ type: 'failed', block: running[0]!, message: err.message, ...(err.stack ? { stack: err.stack } : {}) });
}

// Every message runs after the previous one finished: batches in order, control between batches.
let queue: Promise<void> = Promise.resolve();
const enqueue = (job: () => Promise<void>) => {
  queue = queue.then(() => (broken ? undefined : job())).catch(fail);
};

port.on('message', (r: ControlRequest) => (r.type === 'close' ? shutdown() : enqueue(async () => post({ type: 'reply', id: r.id, value: await control(r) }))));
enqueue(async () => {
  const placements: BlockPlacementReport[] = [];
  for (const b of init.blocks) {
    running[0] = b.index;
    const rt = { threads: init.threads, ...(init.device ? { device: init.device } : {}), ...(init.memArena !== undefined ? { memArena: init.memArena } : {}) };
    runners.push(await runnerFor(b, rt, (p) => placements.push({ index: b.index, name: b.name, ...p })));
  }
  running[0] = -1;
  init.upstream.on('message', (m: DataMessage) => {
    if (m.type === 'batch') enqueue(() => runBatch(m, init.upstream, init.downstream));
  });
  init.downstream?.on('message', (m: DataMessage) => {
    if (m.type === 'free') spare.push(m.buffer);
  });
  post({ type: 'ready', placements });
});
