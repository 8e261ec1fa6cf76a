/**
 * The honest yardstick: accuracy on a test split that took no part in training or in any
 * choice. It is computed once, after training, for the weights that are exported. Every
 * choice it depends on (best epoch, ensemble weights) was made on the validation split:
 * ensemble rules here are fitted on validation goodness and only then applied to test.
 */
import { createSession, type RuntimeOptions, type Session } from '../runtime/session.js';
import type { Model } from '../ir/graph.js';
import { imagesTensor } from '../runtime/tensors.js';
import { batches, type ImageSet } from '../data/index.js';
import { accuracy, combine, ensembleWeights, parseEnsemble, reportedRules } from '../sff/ensemble.js';
import type { SplitGoodness } from './evaluate.js';
import type { EvalOptions } from './blockExecutor.js';

export interface TestMetrics {
  /** Number of test images and where they came from. */
  count: number;
  source: string;
  /** Per-block test accuracy (every trained block, in order). */
  acc: number[];
  /** Test accuracy of each ensemble rule, with weights fitted on the validation split. */
  layers: Record<string, number>;
  /** The configured rule, its validation-fitted weights and its test accuracy. */
  ensemble: { rule: string; weights: number[]; acc: number };
  /** Accuracy of the exported model.onnx on the test images (absent with --no-export). */
  exported?: number;
}

export interface TestReportInput {
  /** Every block's goodness over an image set (the run's executor: serial or pipelined). */
  evaluate: (set: ImageSet, opts: EvalOptions) => Promise<SplitGoodness>;
  /** Which blocks form the "layers" ensemble (a CwC-mod probe does not). */
  layerIdx: number[];
  val: ImageSet;
  test: ImageSet;
  source: string;
  classes: number;
  batchSize: number;
  mean: number[];
  std: number[];
  rule: string;
  /** The weights the export uses (chosen on validation at the best epoch), one per runner. */
  weights: number[];
  /** Validation goodness of these runners, when already computed (else it is computed here). */
  valGoodness?: SplitGoodness;
  /** The exported model, scored on the test images when given. */
  exported?: { session: Session; inputName: string };
}

/** Class scores [n, J] of a whole-network model (input → `scores`) over an image set, in order. */
export async function modelScores(session: Session, inputName: string, set: ImageSet, opts: { classes: number; batchSize: number; mean: number[]; std: number[] }): Promise<Float32Array> {
  const dims = [set.channels, set.height, set.width];
  const scores = new Float32Array(set.count * opts.classes);
  let offset = 0;
  for await (const batch of batches(set, { batchSize: opts.batchSize, shuffle: false, seed: 0, epoch: 0, mean: opts.mean, std: opts.std })) {
    const out = await session.run({ [inputName]: imagesTensor(batch.x, batch.n, dims) });
    scores.set(out.scores!.data as Float32Array, offset * opts.classes);
    offset += batch.n;
  }
  return scores;
}

export async function testReport(r: TestReportInput): Promise<TestMetrics> {
  const J = r.classes;
  const opts = { batchSize: r.batchSize, classes: J, mean: r.mean, std: r.std };
  const val = r.valGoodness ?? (await r.evaluate(r.val, opts));
  const test = await r.evaluate(r.test, opts);
  const layersOf = (g: Float32Array[]) => r.layerIdx.map((k) => g[k]!);
  const layers: Record<string, number> = {};
  for (const rule of reportedRules(r.layerIdx.length, r.rule)) {
    const w = ensembleWeights(parseEnsemble(rule), layersOf(val.goodness), val.labels, J);
    layers[rule] = accuracy(combine(layersOf(test.goodness), w), test.labels, J);
  }
  const out: TestMetrics = {
    count: r.test.count,
    source: r.source,
    acc: test.goodness.map((g) => accuracy(g, test.labels, J)),
    layers,
    ensemble: { rule: r.rule, weights: r.weights, acc: accuracy(combine(test.goodness, r.weights), test.labels, J) },
  };
  if (r.exported) out.exported = accuracy(await modelScores(r.exported.session, r.exported.inputName, r.test, opts), test.labels, J);
  return out;
}

/**
 * The test report of a finished run: the executor's blocks (holding the exported weights) and,
 * when exported, model.onnx itself, on the held-out images.
 */
export async function testRun(r: Omit<TestReportInput, 'exported'> & { exported?: { model: Model; inputName: string; runtime: RuntimeOptions } }): Promise<TestMetrics> {
  const { exported, ...rest } = r;
  const session = exported ? await createSession(exported.model, exported.runtime) : undefined;
  try {
    return await testReport({ ...rest, ...(session && exported ? { exported: { session, inputName: exported.inputName } } : {}) });
  } finally {
    await session?.release();
  }
}
