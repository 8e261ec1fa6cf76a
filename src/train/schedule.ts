/** Per-block ReduceLROnPlateau and ensemble early stopping (the paper's optimisation schedule), with plain serialisable state. */

export interface PlateauState {
  lr: number;
  best: number;
  badEpochs: number;
}

/** PyTorch's ReduceLROnPlateau in 'min' mode with a relative threshold of 1e-4. */
export class Plateau {
  constructor(
    public state: PlateauState,
    readonly patience = 10,
    readonly factor = 0.1,
    readonly threshold = 1e-4,
    readonly minLr = 0,
  ) {}

  static start(lr: number, patience = 10, factor = 0.1): Plateau {
    return new Plateau({ lr, best: Infinity, badEpochs: 0 }, patience, factor);
  }

  /** Records an epoch's validation loss; returns the (possibly reduced) learning rate. */
  observe(loss: number): number {
    const s = this.state;
    if (loss < s.best * (1 - this.threshold)) {
      s.best = loss;
      s.badEpochs = 0;
    } else if (++s.badEpochs > this.patience) {
      s.lr = Math.max(this.minLr, s.lr * this.factor);
      s.badEpochs = 0;
    }
    return s.lr;
  }
}

export interface EarlyStopState {
  best: number;
  bestEpoch: number;
  badEpochs: number;
}

/** Stops when validation accuracy has not improved for `patience` epochs. */
export class EarlyStopping {
  constructor(
    public state: EarlyStopState = { best: -Infinity, bestEpoch: -1, badEpochs: 0 },
    readonly patience = 30,
  ) {}

  /** Returns true when training should stop. */
  observe(accuracy: number, epoch: number): boolean {
    const s = this.state;
    if (accuracy > s.best) {
      s.best = accuracy;
      s.bestEpoch = epoch;
      s.badEpochs = 0;
    } else s.badEpochs++;
    return s.badEpochs >= this.patience;
  }
}

/**
 * Step-wise learning-rate shapes beside the per-epoch plateau rule: `plateau` keeps the base
 * rate (ReduceLROnPlateau lowers it between epochs), `cosine` decays it to zero over the run
 * (per step, as PyTorch's CosineAnnealingLR with T_max = all steps). Either may start with a
 * linear warm-up from base/warmup to base over the first `warmup` steps.
 */
export const LR_SCHEDULES = ['plateau', 'cosine'] as const;
export type LrSchedule = (typeof LR_SCHEDULES)[number];

/** Multiplier of the base learning rate at 0-based global step `step` of `total`. */
export function lrFactor(schedule: LrSchedule, step: number, total: number, warmup: number): number {
  if (step < warmup) return (step + 1) / warmup;
  if (schedule === 'plateau') return 1;
  const span = Math.max(1, total - warmup);
  return 0.5 * (1 + Math.cos((Math.PI * Math.min(step - warmup, span)) / span));
}
