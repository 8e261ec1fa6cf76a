/**
 * Progress of the long phases of a run (decode, build, train, validate, export check) as
 * `progress` events, with an estimate of the time left in the phase and in the whole run.
 *
 * The whole-run estimate adds, to what is left of the current phase, every later phase at the
 * speed measured so far: seconds per training step, seconds per validation batch (before the
 * first validation, a forward-only batch is taken as a third of a training step, the usual ratio
 * of a forward pass to forward + backward + update).
 */
import type { Phase, ProgressEvent } from './events.js';

export interface RunShape {
  /** Epochs still to run (this one included) and the total. */
  epochsLeft: number;
  epochs: number;
  stepsPerEpoch: number;
  valBatches: number;
  /** The export check runs the exported model plus every block over the validation split: about two validation passes. */
  exportCheck: boolean;
}

/** Progress events are sent at most this often (ms), besides each phase's first and last. */
const EMIT_INTERVAL_MS = 250;

export class RunProgress {
  private stepSeconds = NaN;
  private valBatchSeconds = NaN;
  private shape: RunShape | undefined;
  private epochsDone = 0;

  constructor(private readonly emit: (e: ProgressEvent) => void) {}

  /** Sets what remains once the run's size is known (after data and graphs are ready). */
  plan(shape: RunShape): void {
    this.shape = shape;
  }

  /** Starts a phase; returns its tracker. */
  phase(phase: Phase, total: number, unit: ProgressEvent['unit'], epoch?: { epoch: number; epochs: number }): PhaseTracker {
    return new PhaseTracker(this, phase, total, unit, epoch?.epoch, epoch?.epochs);
  }

  /**
   * A phase whose total is known only with its first report (decoding: the data layer counts the
   * images as it goes): `update(done, total)` starts it on first call; `end()` is a no-op if it never started.
   */
  lazyPhase(phase: Phase, unit: ProgressEvent['unit']): { update(done: number, total: number): void; end(): void } {
    let tracker: PhaseTracker | undefined;
    return {
      update: (done, total) => (tracker ??= this.phase(phase, total, unit)).update(done),
      end: () => void tracker?.end(),
    };
  }

  /** Records measured speeds when a phase ends. */
  measured(phase: Phase, seconds: number, done: number): void {
    if (done <= 0) return;
    if (phase === 'train') this.stepSeconds = seconds / done;
    if (phase === 'validate') {
      this.valBatchSeconds = seconds / done;
      this.epochsDone++;
    }
  }

  /** Seconds left in the run after the current phase, given which phase is running. */
  remainingAfter(phase: Phase): number | undefined {
    const s = this.shape;
    if (!s || !Number.isFinite(this.stepSeconds)) return undefined;
    const val = Number.isFinite(this.valBatchSeconds) ? this.valBatchSeconds : this.stepSeconds / 3;
    const valPass = val * s.valBatches;
    const epochsAfterThis = Math.max(0, s.epochsLeft - this.epochsDone - 1);
    const exportCheck = s.exportCheck ? 2 * valPass : 0;
    const later = epochsAfterThis * (s.stepsPerEpoch * this.stepSeconds + valPass) + exportCheck;
    if (phase === 'train') return valPass + later;
    if (phase === 'validate') return later;
    return 0;
  }

  send(e: ProgressEvent): void {
    this.emit(e);
  }
}

export class PhaseTracker {
  private readonly start = performance.now();
  private lastEmit = -Infinity;
  private done = 0;

  constructor(
    private readonly run: RunProgress,
    readonly phase: Phase,
    readonly total: number,
    readonly unit: ProgressEvent['unit'],
    readonly epoch?: number,
    private readonly epochs?: number,
  ) {}

  /** Reports `done` of `total`; `extra` carries the train phase's throughput and loss. */
  update(done: number, extra: { imagesPerSecond?: number; meanLoss?: number } = {}): void {
    this.done = done;
    const now = performance.now();
    const last = done >= this.total;
    if (!last && done > 1 && now - this.lastEmit < EMIT_INTERVAL_MS) return;
    this.lastEmit = now;
    const elapsed = (now - this.start) / 1000;
    const phaseEta = done > 0 ? (elapsed * (this.total - done)) / done : NaN;
    if (this.phase === 'train' && done > 0) this.run.measured('train', elapsed, done); // the speed so far feeds the run estimate
    const after = this.run.remainingAfter(this.phase);
    this.run.send({
      type: 'progress',
      phase: this.phase,
      ...(this.epoch !== undefined ? { epoch: this.epoch } : {}),
      ...(this.epochs !== undefined ? { epochs: this.epochs } : {}),
      done,
      total: this.total,
      unit: this.unit,
      elapsedSeconds: elapsed,
      phaseEtaSeconds: phaseEta,
      ...(after !== undefined && Number.isFinite(phaseEta) ? { runEtaSeconds: phaseEta + after } : {}),
      ...extra,
    });
  }

  /** Ends the phase, recording its speed for later estimates. */
  end(): number {
    const seconds = (performance.now() - this.start) / 1000;
    this.run.measured(this.phase, seconds, this.done);
    return seconds;
  }
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(0)}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
