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
