/**
 * One validation layer for the options of a fine-tuning run, used by the library (`finetune`) and
 * the command line alike: every value is checked (type, integer, range, given once) before any
 * work starts, and a bad one is refused naming the option as the caller spelt it (`--batch-size`
 * on the command line, `batchSize` in the library).
 */
import { parseHeadPool } from '../sff/head.js';
import { parseEnsemble } from '../sff/ensemble.js';
import { parseNormalize } from '../data/preprocess.js';
import { OptionError, type FinetuneOptions } from './options.js';

/** How option names appear in messages: CLI flags or library fields. */
export type OptionStyle = 'cli' | 'library';

type Key = Exclude<keyof FinetuneOptions, 'onEvent' | 'signal'>;

/** CLI flag of each option whose flag is not its field name in kebab case (the library uses the field name). */
const FLAGS: Partial<Record<Key, string>> = {
  model: 'model',
  data: 'data',
  method: 'method',
  out: 'out',
  epochs: 'epochs',
  batchSize: 'batch-size',
  lr: 'lr',
  weightDecay: 'weight-decay',
  bnMomentum: 'bn-momentum',
  seed: 'seed',
  threads: 'threads',
  device: 'device',
  ensemble: 'ensemble',
  norm: 'norm',
  auxKernel: 'aux-kernel',
  headPool: 'head-pool',
  blocks: 'blocks',
  freeze: 'freeze',
  normalize: 'normalize',
  augment: 'augment',
  subset: 'subset',
  testData: 'test',
  imageSize: 'image-size',
  valFraction: 'val-fraction',
  lrPatience: 'lr-patience',
  stopPatience: 'stop-patience',
  resume: 'resume',
  overwrite: 'overwrite',
  memArena: 'mem-arena',
  cacheDir: 'cache-dir',
  maxStepsPerEpoch: 'max-steps',
  noExport: 'export',
  quiet: 'quiet',
};

export function optionName(key: Key, style: OptionStyle): string {
  if (style === 'library') return `option '${key}'`;
  if (key === 'model') return 'the model argument';
  return `--${FLAGS[key] ?? key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

interface IntRule {
  kind: 'int';
  min: number;
  max?: number;
  /** What the option counts, for the message. */
  what: string;
}
interface NumberRule {
  kind: 'number';
  /** Lower bound, exclusive when `above`. */
  min: number;
  above?: boolean;
  max?: number;
  /** Upper bound exclusive when `below`. */
  below?: boolean;
}
type Rule = IntRule | NumberRule | { kind: 'string' } | { kind: 'boolean' } | { kind: 'choice'; choices: readonly string[] };

const RULES: Partial<Record<Key, Rule>> = {
  model: { kind: 'string' },
  data: { kind: 'string' },
  method: { kind: 'choice', choices: ['sff', 'bp', 'cwc'] },
  out: { kind: 'string' },
  epochs: { kind: 'int', min: 1, max: 1_000_000, what: 'epochs' },
  batchSize: { kind: 'int', min: 1, max: 1 << 16, what: 'images per batch' },
  lr: { kind: 'number', min: 0, above: true },
  weightDecay: { kind: 'number', min: 0 },
  bnMomentum: { kind: 'number', min: 0, above: true, max: 1 },
  seed: { kind: 'int', min: 0, max: 2 ** 32 - 1, what: 'a seed' },
  threads: { kind: 'int', min: 1, max: 1024, what: 'threads' },
  device: { kind: 'string' },
  ensemble: { kind: 'string' },
  norm: { kind: 'choice', choices: ['auto', 'chain', 'head', 'none'] },
  blocks: { kind: 'string' },
  normalize: { kind: 'string' },
  // augment: a boolean or a preset name, checked by parseAugment when the configuration is resolved.
  subset: { kind: 'int', min: 1, max: 2 ** 31 - 1, what: 'training images' },
  testData: { kind: 'string' },
  imageSize: { kind: 'int', min: 1, max: 16384, what: 'pixels' },
  valFraction: { kind: 'number', min: 0, above: true, max: 1, below: true },
  lrPatience: { kind: 'int', min: 0, max: 1_000_000, what: 'epochs' },
  stopPatience: { kind: 'int', min: 0, max: 1_000_000, what: 'epochs' },
  resume: { kind: 'string' },
  overwrite: { kind: 'boolean' },
  memArena: { kind: 'boolean' },
  cacheDir: { kind: 'string' },
  maxStepsPerEpoch: { kind: 'int', min: 1, max: 2 ** 31 - 1, what: 'steps' },
  noExport: { kind: 'boolean' },
  quiet: { kind: 'boolean' },
};

function show(v: unknown): string {
  if (typeof v === 'number' && Number.isNaN(v)) return 'a value that is not a number';
  return typeof v === 'string' ? `'${v}'` : JSON.stringify(v) ?? String(v);
}

function range(r: IntRule | NumberRule): string {
  const lo = r.kind === 'number' && r.above ? `> ${r.min}` : `≥ ${r.min}`;
  if (r.max === undefined) return lo;
  const hi = r.kind === 'number' && r.below ? `< ${r.max}` : `≤ ${r.max}`;
  return `${lo} and ${hi}`;
}

/** A number from a number or a numeric string (config files and the CLI's string options). */
function asNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '') return Number(v);
  return NaN;
}

function checkRule(name: string, rule: Rule, v: unknown): unknown {
  switch (rule.kind) {
    case 'string':
      if (typeof v !== 'string' || v === '') throw new OptionError(`${name} needs a value (a ${name.includes('--') ? 'path or word' : 'string'}), got ${show(v)}`);
      return v;
    case 'boolean':
      if (typeof v !== 'boolean') throw new OptionError(`${name} is a switch (true or false), got ${show(v)}`);
      return v;
    case 'choice':
      if (typeof v !== 'string' || !rule.choices.includes(v)) throw new OptionError(`${name} must be one of ${rule.choices.join(', ')}; got ${show(v)}`);
      return v;
    case 'int': {
      const n = asNumber(v);
      if (!Number.isFinite(n)) throw new OptionError(`${name} must be a whole number ${range(rule)}, got ${show(v)}`);
      if (!Number.isInteger(n)) throw new OptionError(`${name} must be a whole number of ${rule.what}, got ${n} (it is not rounded for you)`);
      if (n < rule.min || (rule.max !== undefined && n > rule.max)) throw new OptionError(`${name} must be ${range(rule)}, got ${n}`);
      return n;
    }
    case 'number': {
      const n = asNumber(v);
      const low = rule.above ? n <= rule.min : n < rule.min;
      const high = rule.max !== undefined && (rule.below ? n >= rule.max : n > rule.max);
      if (!Number.isFinite(n) || low || high) throw new OptionError(`${name} must be a number ${range(rule)}, got ${show(v)}`);
      return n;
    }
  }
}

/**
 * Returns `raw` with every given option checked and normalised (numbers from numeric strings,
 * `freeze` as a list of names split at commas), or throws OptionError naming the first bad one.
 * `raw` may come straight from an argument parser: a flag given twice arrives as an array.
 */
/** The style options were validated in: checks that need the model (`checkFreezeNames`) name options the same way. */
const validatedStyle = new WeakMap<object, OptionStyle>();

export function styleOf(opts: FinetuneOptions): OptionStyle {
  return validatedStyle.get(opts) ?? 'library';
}

export function validateFinetuneOptions(raw: FinetuneOptions, style: OptionStyle = styleOf(raw)): FinetuneOptions {
  const input = { ...(raw as unknown as Record<string, unknown>) };
  const out: Record<string, unknown> = { ...input };
  // A resumed run takes model and data from its checkpoint: library callers may leave them empty.
  if (input.resume !== undefined)
    for (const k of ['model', 'data'])
      if (input[k] === '') {
        delete out[k];
        delete input[k];
      }
  if (input.valFraction === 0)
    throw new OptionError(
      `${optionName('valFraction', style)} 0 leaves no validation split, and the best epoch, learning-rate plateaus and early stopping are all judged on it; use a fraction such as 0.1`,
    );
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined || key === 'onEvent' || key === 'signal' || key === 'freeze' || key === 'auxKernel' || key === 'headPool') continue;
    const name = optionName(key as Key, style);
    const rule = RULES[key as Key];
    if (!rule) continue; // options without a rule here (callbacks, new options) are the caller's
    // An image size is H or [H, W] (numbers); an array of anything else is a repeated flag.
    if (key === 'imageSize' && Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === 'number')) {
      out[key] = value.map((v) => checkRule(name, rule, v));
      continue;
    }
    if (Array.isArray(value))
      throw new OptionError(`${name} was given ${value.length} times (${value.map(show).join(', ')}); give it once`);
    out[key] = checkRule(name, rule, value);
  }
  const aux = input.auxKernel;
  if (aux !== undefined && aux !== 'auto') {
    const name = optionName('auxKernel', style);
    if (Array.isArray(aux)) throw new OptionError(`${name} was given ${aux.length} times (${aux.map(show).join(', ')}); give it once`);
    out.auxKernel = checkRule(name, { kind: 'int', min: 1, max: 31, what: 'pixels (the kernel is square)' }, aux) as number;
  } else if (aux === 'auto') delete out.auxKernel;
  const pool = input.headPool;
  if (pool !== undefined) {
    const name = optionName('headPool', style);
    if (Array.isArray(pool)) throw new OptionError(`${name} was given ${pool.length} times (${pool.map(show).join(', ')}); give it once`);
    try {
      out.headPool = parseHeadPool(pool as string | number, name);
    } catch (e) {
      throw new OptionError((e as Error).message);
    }
  }
  if (input.freeze !== undefined) out.freeze = freezeList(input.freeze, optionName('freeze', style));
  if (typeof out.ensemble === 'string' && out.ensemble !== 'auto') {
    try {
      parseEnsemble(out.ensemble);
    } catch {
      throw new OptionError(`${optionName('ensemble', style)} ${show(out.ensemble)} is not understood: use all, last:K (K ≥ 1), weighted or auto`);
    }
  }
  if (typeof out.normalize === 'string') {
    try {
      parseNormalize(out.normalize);
    } catch (e) {
      throw new OptionError(`${optionName('normalize', style)}: ${(e as Error).message}`);
    }
  }
  if (out.resume !== undefined && out.overwrite) throw new OptionError(`${optionName('resume', style)} and ${optionName('overwrite', style)} contradict each other; give one`);
  validatedStyle.set(out, style);
  return out as unknown as FinetuneOptions;
}

/** `--freeze a,b --freeze 3` (strings or lists of them) → ['a', 'b', '3']; empty names refused. */
function freezeList(v: unknown, name: string): string[] {
  const items = Array.isArray(v) ? v : [v];
  const names: string[] = [];
  for (const item of items) {
    if (typeof item !== 'string' && typeof item !== 'number') throw new OptionError(`${name} takes block names or indices, got ${show(item)}`);
    for (const part of String(item).split(',')) {
      const s = part.trim();
      if (s) names.push(s);
    }
  }
  return names;
}

/**
 * Every `--freeze` entry must name a block of the model (by name or index): an unknown one would
 * silently freeze nothing.
 */
export function checkFreezeNames(freeze: readonly string[], blocks: readonly { name: string; index: number }[], style: OptionStyle): void {
  const known = new Set(blocks.flatMap((b) => [b.name, String(b.index)]));
  const unknown = freeze.filter((f) => !known.has(f));
  if (unknown.length)
    throw new OptionError(
      `${optionName('freeze', style)}: no block named ${unknown.map((u) => `'${u}'`).join(', ')}; the model's blocks are ` +
        `${blocks.map((b) => `${b.index} ${b.name}`).join(', ')} (give names or indices)`,
    );
}
