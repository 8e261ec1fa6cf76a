/** The importer's op lists against the gradient registry: every op a block may train through has a rule. */
import { describe, expect, it } from 'vitest';
import { FORWARD_ONLY_OPS, SHAPE_OPS, SUPPORTED_OPS, TRAINED_OPS } from '../../src/import/ops.js';
import { gradientRules, hasGradientRule } from '../../src/autodiff/registry.js';

describe('supported ops and gradient rules', () => {
  it('every op a block trains through has a gradient rule', () => {
    expect(TRAINED_OPS.filter((op) => !hasGradientRule(op))).toEqual([]);
  });

  it('the supported list is exactly the trained ops plus the forward-only ops', () => {
    expect([...SUPPORTED_OPS].sort()).toEqual([...new Set([...TRAINED_OPS, ...FORWARD_ONLY_OPS])].sort());
    expect(TRAINED_OPS.filter((op) => FORWARD_ONLY_OPS.includes(op))).toEqual([]);
  });

  it('names the gradient rules the importer does not accept yet, so a new rule is a decision', () => {
    const imported = new Set([...SUPPORTED_OPS, ...SHAPE_OPS]);
    const notImported = Object.keys(gradientRules).filter((op) => !imported.has(op)).sort();
    expect(notImported).toEqual([
      'Abs', 'Erf', 'Exp', 'GatherElements', 'Log', 'Max', 'Mean', 'Min', 'Neg', 'Pow', 'Reciprocal',
      'ReduceLogSumExp', 'ReduceSum', 'Softplus', 'Sqrt', 'Sum', 'Tile',
    ]);
  });
});
