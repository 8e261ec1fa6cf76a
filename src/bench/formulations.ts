/**
 * One gradient formulation against another on whole training steps: the trainer's step for a
 * case (model, input size, batch) built once per form of one `GradFormulations` key, in one
 * process, steps interleaved round by round (throughput.ts), so the ratio is paired and its
 * spread reported. The per-op benches in autodiff.ts time a rule in isolation; this one shows
 * what a formulation does inside onnxruntime's graph optimisation (fusions, memory reuse).
 *
 *   node dist/bench/formulations.js --case MODEL:SIZE:BATCH --key activationMask --forms output,input
 *       [--method sff|bp] [--threads 2] [--rounds 7] [--out FILE]
 *
 * MODEL is `builtin:<kind>`, a torchvision fixture path or any .onnx; the first form is the
 * numerator of every ratio (form ÷ each other form, img/s).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_FORMULATIONS, type GradFormulations } from '../autodiff/types.js';
import type { Method } from '../train/options.js';
import { measureInChild, measureInterleavedInChild, type InterleavedResult, type Measurement, type RatioSpec, type VariantSpec } from './throughput.js';

export interface FormulationBench {
  case: { model: string; imageSize: number; batch: number };
  key: keyof GradFormulations;
  forms: string[];
  method: Method;
  threads: number;
  rounds: number;
}

/** The formulations that set `key` to `form`, the rest left at the project's defaults. */
const withForm = (key: keyof GradFormulations, form: string) => ({ [key]: form }) as Partial<GradFormulations>;

export function formulationVariants(b: FormulationBench): { variants: VariantSpec[]; ratios: RatioSpec[] } {
  const name = (form: string) => `${b.method} ${b.key}=${form}`;
  const variants: VariantSpec[] = b.forms.map((form) => ({ name: name(form), kind: 'train', setup: { method: b.method, formulations: withForm(b.key, form) } }));
  const [first, ...others] = b.forms;
  const ratios: RatioSpec[] = others.map((o) => ({ name: `${name(first!)} ÷ ${name(o)}`, num: name(first!), den: name(o), divisor: 1 }));
  return { variants, ratios };
}

export interface FormulationResult {
  /** Speed: every form in one process, steps interleaved. */
  speed: InterleavedResult;
  /** Memory: each form in its own process (peak RSS of the steps, arena off as the trainer runs). */
  memory: Measurement[];
}

export async function runFormulationBench(b: FormulationBench): Promise<FormulationResult> {
  const { variants, ratios } = formulationVariants(b);
  const speed = await measureInterleavedInChild({ ...b.case, variants, ratios, memArena: false, threads: b.threads, warmup: 1, minRounds: b.rounds, maxRounds: b.rounds, maxSeconds: 0 });
  const memory: Measurement[] = [];
  for (const form of b.forms)
    memory.push(await measureInChild({ ...b.case, mode: b.method, memArena: false, warmup: 1, reps: 2, threads: b.threads, formulations: withForm(b.key, form) }));
  return { speed, memory };
}

function parseArgs(argv: string[]): FormulationBench & { out?: string } {
  const get = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const spec = get('--case');
  const key = get('--key') as keyof GradFormulations | undefined;
  const forms = get('--forms')?.split(',');
  if (!spec || !key || !forms || forms.length < 2) throw new Error('usage: formulations.js --case MODEL:SIZE:BATCH --key KEY --forms A,B[,…] [--method sff|bp] [--threads N] [--rounds N] [--out FILE]');
  if (!(key in DEFAULT_FORMULATIONS)) throw new Error(`--key ${key}: not a gradient formulation (${Object.keys(DEFAULT_FORMULATIONS).join(', ')})`);
  const parts = spec.split(':');
  const [batch, imageSize] = [Number(parts.pop()), Number(parts.pop())];
  const out = get('--out');
  return {
    case: { model: parts.join(':'), imageSize, batch },
    key,
    forms,
    method: (get('--method') ?? 'sff') as Method,
    threads: Number(get('--threads') ?? 2),
    rounds: Number(get('--rounds') ?? 7),
    ...(out ? { out } : {}),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = parseArgs(process.argv.slice(2));
  runFormulationBench(args).then(
    (r) => {
      const json = JSON.stringify({ date: new Date().toISOString(), bench: { ...args, out: undefined }, result: r }, null, 2) + '\n';
      if (args.out) {
        mkdirSync(dirname(args.out), { recursive: true });
        writeFileSync(args.out, json);
      }
      for (const v of r.speed.variants) console.error(`${v.name}: ${v.msMedian.toFixed(0)} ms/step (q1 ${v.msQ1.toFixed(0)}, q3 ${v.msQ3.toFixed(0)}), ${v.imagesPerSecond.toFixed(1)} img/s`);
      for (const x of r.speed.ratios) console.error(`${x.name}: ${x.median.toFixed(3)} ±${(100 * x.spread).toFixed(0)}%${x.flagged ? ' (flagged)' : ''}`);
      r.memory.forEach((m, k) => console.error(`${args.key}=${args.forms[k]}: peak RSS of the steps ${m.stepPeakRssMB} MB (whole process ${m.peakRssMB} MB)`));
      process.stdout.write(json);
    },
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
