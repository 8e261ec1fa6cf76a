/** A block as it crosses into a worker thread (graphs as bytes, weights as arrays), and back into a BlockRunner there. */
import type { TrainBlock } from '../../blocks/block.js';
import { ParamLayout } from '../../blocks/params.js';
import { createPlacedSession, createSession, type RuntimeOptions, type Session } from '../../runtime/session.js';
import { parseDevice, type PlacementSummary } from '../../runtime/providers.js';
import { decodeModel } from '../../onnx/io.js';
import { BlockRunner } from '../runner.js';
import type { WorkerBlock } from './messages.js';

export function toWorkerBlock(index: number, block: TrainBlock, layout: ParamLayout, params: Float32Array, graphs: { train: Uint8Array; eval?: Uint8Array }, lr: number): WorkerBlock {
  return {
    index,
    name: block.name,
    layout: layout.entries.map((e) => ({ name: e.name, dims: e.dims })),
    trainGraph: graphs.train,
    ...(graphs.eval ? { evalGraph: graphs.eval } : {}),
    params,
    state: block.state.map((s) => {
      const c = block.constants.get(s)!;
      return { name: s, data: new Float32Array(c.raw.slice().buffer), dims: c.dims };
    }),
    outputShape: block.outputShape,
    lr,
  };
}

/** The block's runner with its own train (and eval) sessions; with `rt.profilePrefix`, one profile per session. */
export async function runnerFor(b: WorkerBlock, rt: RuntimeOptions, onPlacement?: (p: { train?: PlacementSummary; eval?: PlacementSummary }) => void): Promise<BlockRunner> {
  const layout = new ParamLayout();
  for (const e of b.layout) layout.add(e.name, e.dims);
  const opts = (kind: string): RuntimeOptions => ({ ...rt, ...(rt.profilePrefix ? { profilePrefix: `${rt.profilePrefix}${kind}_${b.index}` } : {}) });
  // On a GPU device each session is probed once for where its nodes run (the graph decoded for its inputs).
  const gpu = parseDevice(rt.device).kind !== 'cpu';
  const session = async (bytes: Uint8Array, kind: string): Promise<{ session: Session; placement?: PlacementSummary }> =>
    gpu ? createPlacedSession(decodeModel(bytes), opts(kind), bytes) : { session: await createSession(bytes, opts(kind)) };
  const train = await session(b.trainGraph, 'train');
  const evaluation = b.evalGraph ? await session(b.evalGraph, 'eval') : undefined;
  onPlacement?.({ ...(train.placement ? { train: train.placement } : {}), ...(evaluation?.placement ? { eval: evaluation.placement } : {}) });
  const sessions = { train: train.session, ...(evaluation ? { eval: evaluation.session } : {}) };
  const state = new Map(b.state.map((s) => [s.name, { data: s.data, dims: s.dims }]));
  return new BlockRunner(b.name, layout, { params: b.params, state }, sessions, new Map(b.state.map((s) => [s.name, s.dims])), b.lr);
}
