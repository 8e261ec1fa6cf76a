/**
 * Deployed latency: median wall time of one batch through the exported model and through the
 * original network, each in its own fresh session with the run's runtime options, measured
 * interleaved so both see the same machine load. A note for the export summary, not a benchmark.
 */
import ort from 'onnxruntime-node';
import type { Model } from '../ir/graph.js';
import { createSession, type RuntimeOptions } from '../train/session.js';
import type { LatencyNote } from '../train/events.js';

async function timeOnce(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>): Promise<number> {
  const t0 = performance.now();
  await session.run(feeds);
  return performance.now() - t0;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
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

export async function measureLatency(spec: LatencyInput): Promise<LatencyNote> {
  const runs = spec.runs ?? 7;
  const shape = [spec.batch, ...spec.inputShape];
  const x = new ort.Tensor('float32', new Float32Array(shape.reduce((a, d) => a * d, 1)).map((_, i) => Math.sin(i)), shape);
  const exported = await createSession(spec.exported, spec.runtime);
  const original = await createSession(spec.original, spec.runtime);
  try {
    const fe = { [exported.inputNames[0]!]: x };
    const fo = { [original.inputNames[0]!]: x };
    await timeOnce(exported, fe); // first runs allocate and pick kernels
    await timeOnce(original, fo);
    const te: number[] = [];
    const to: number[] = [];
    for (let r = 0; r < runs; r++) {
      te.push(await timeOnce(exported, fe));
      to.push(await timeOnce(original, fo));
    }
    return { batch: spec.batch, exportedMs: median(te), originalMs: median(to), runs };
  } finally {
    await exported.release();
    await original.release();
  }
}
