/**
 * Deployed latency: median wall time of one batch through the exported model and through the
 * original network, each in its own fresh session with the run's runtime options, measured
 * interleaved so both see the same machine load. A note for the export summary, not a benchmark.
 */
import type { Model } from '../ir/graph.js';
import { createSession, type RuntimeOptions, type Session } from '../runtime/session.js';
import { float32Tensor, type Tensor } from '../runtime/tensors.js';
import { median } from '../util/stats.js';

/** Median milliseconds per batch of the exported model and of the original network, measured after export. */
export interface LatencyNote {
  batch: number;
  exportedMs: number;
  originalMs: number;
  runs: number;
}

async function timeOnce(session: Session, feeds: Record<string, Tensor>): Promise<number> {
  const t0 = performance.now();
  await session.run(feeds);
  return performance.now() - t0;
}

/**
 * Median milliseconds per run of each model on the same batch, interleaved round by round so every
 * model sees the same machine load; one untimed run each first (allocation, kernel choice).
 */
export async function medianLatencies(
  models: Record<string, Model | Uint8Array>,
  inputShape: number[],
  batch: number,
  runs: number,
  runtime: RuntimeOptions = {},
): Promise<Record<string, number>> {
  const shape = [batch, ...inputShape];
  const x = float32Tensor(new Float32Array(shape.reduce((a, d) => a * d, 1)).map((_, i) => Math.sin(i)), shape);
  const sessions: [string, Session, Record<string, Tensor>][] = [];
  try {
    for (const [name, m] of Object.entries(models)) {
      const s = await createSession(m, runtime);
      sessions.push([name, s, { [s.inputNames[0]!]: x }]);
    }
    for (const [, s, feeds] of sessions) await timeOnce(s, feeds);
    const times: Record<string, number[]> = Object.fromEntries(sessions.map(([n]) => [n, []]));
    for (let r = 0; r < runs; r++) for (const [name, s, feeds] of sessions) times[name]!.push(await timeOnce(s, feeds));
    return Object.fromEntries(Object.entries(times).map(([n, t]) => [n, median(t)]));
  } finally {
    for (const [, s] of sessions) await s.release();
  }
}

export interface LatencyInput {
  exported: Model | Uint8Array;
  original: Model;
  /** Per-sample input dims [C, H, W] shared by both models. */
  inputShape: number[];
  batch: number;
  runs?: number;
  runtime?: RuntimeOptions;
}

/** The export summary's note: the exported model against the original network. */
export async function measureLatency(spec: LatencyInput): Promise<LatencyNote> {
  const runs = spec.runs ?? 7;
  const ms = await medianLatencies({ exported: spec.exported, original: spec.original }, spec.inputShape, spec.batch, runs, spec.runtime);
  return { batch: spec.batch, exportedMs: ms.exported!, originalMs: ms.original!, runs };
}
