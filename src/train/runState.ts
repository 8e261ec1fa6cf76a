/**
 * What a run's checkpoint holds and how it maps onto the trainers: per block the parameters,
 * AdamW moments, running statistics and the best epoch's weights (array keys `b<k>.…`), plus a
 * JSON header with the configuration, schedules and history. A resumed run continues from it exactly.
 */
import { join } from 'node:path';
import { readCheckpoint, writeCheckpoint, type Checkpoint } from './checkpoint.js';
import type { BlockState, BlockWeights } from './runner.js';
import type { BlockExecutor } from './blockExecutor.js';
import type { EpochMetrics } from './metrics.js';
import type { EarlyStopping, EarlyStopState, PlateauState } from './schedule.js';
import type { RunConfig } from './options.js';
import { storedConfig } from './runFolder.js';
import type { Trainer } from './stages.js';

const CHECKPOINT_FILE = 'checkpoint.sff';

interface CheckpointHeader {
  version: 1;
  config: RunConfig;
  epoch: number;
  blocks: { name: string; step: number; plateau: PlateauState; state: string[] }[];
  stop: EarlyStopState;
  history: EpochMetrics[];
  bestEpoch: number;
}

export type RunCheckpoint = Checkpoint<CheckpointHeader>;

/** The best validation epoch so far and every block's weights at its end (-1: none yet). */
export interface BestEpoch {
  epoch: number;
  states: BlockWeights[];
}

/** Where a run stands after each epoch: what the loop advances and the checkpoint records. */
export interface RunState {
  history: EpochMetrics[];
  best: BestEpoch;
  stop: EarlyStopping;
  /** The next epoch to run (0-based). */
  startEpoch: number;
}

export function readRunCheckpoint(dir: string): RunCheckpoint {
  return readCheckpoint<CheckpointHeader>(join(dir, CHECKPOINT_FILE));
}

/** `snapshots`: every block's state now (BlockExecutor.snapshot()). */
export function saveRunState(cfg: RunConfig, trainers: Trainer[], snapshots: BlockState[], epoch: number, run: RunState): void {
  const arrays: Record<string, Float32Array> = {};
  const header: CheckpointHeader = {
    version: 1,
    // Input paths relative to the run folder, so a moved run (with its inputs) still resumes.
    config: storedConfig(cfg, cfg.out),
    epoch,
    blocks: trainers.map((t, k) => {
      const s = snapshots[k]!;
      arrays[`b${k}.params`] = s.params;
      arrays[`b${k}.m`] = s.m;
      arrays[`b${k}.v`] = s.v;
      for (const [name, d] of Object.entries(s.state)) arrays[`b${k}.state.${name}`] = d;
      const bs = run.best.states[k]!;
      arrays[`b${k}.best.params`] = bs.params;
      for (const [name, d] of Object.entries(bs.state)) arrays[`b${k}.best.state.${name}`] = d;
      return { name: t.block.name, step: s.step, plateau: { ...t.plateau.state }, state: Object.keys(s.state) };
    }),
    stop: { ...run.stop.state },
    history: run.history,
    bestEpoch: run.best.epoch,
  };
  writeCheckpoint(join(cfg.out, CHECKPOINT_FILE), { header, arrays });
}

/** Puts a checkpoint back into freshly built trainers, their executor and the run state. */
export async function restoreRunState(resumed: RunCheckpoint, trainers: Trainer[], executor: BlockExecutor, run: RunState): Promise<void> {
  const h = resumed.header;
  const states = trainers.map((t, k): BlockState => {
    const hb = h.blocks[k]!;
    const state: Record<string, Float32Array> = {};
    const bestState: Record<string, Float32Array> = {};
    for (const s of hb.state) {
      state[s] = resumed.arrays[`b${k}.state.${s}`]!;
      bestState[s] = resumed.arrays[`b${k}.best.state.${s}`]!;
    }
    t.plateau.state = { ...hb.plateau };
    run.best.states[k] = { params: resumed.arrays[`b${k}.best.params`]!, state: bestState };
    return { params: resumed.arrays[`b${k}.params`]!, m: resumed.arrays[`b${k}.m`]!, v: resumed.arrays[`b${k}.v`]!, state, step: hb.step };
  });
  await executor.restore(states);
  await executor.setLr(h.blocks.map((hb) => hb.plateau.lr));
  run.stop.state = { ...h.stop };
  run.history = h.history;
  run.best.epoch = h.bestEpoch;
  run.startEpoch = h.epoch + 1;
}
