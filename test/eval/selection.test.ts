/** Which cut of the data `eval` scores: the training run's recorded one only on the same data. */
import { describe, expect, it } from 'vitest';
import { resolve } from 'node:path';
import { chooseSelection } from '../../src/eval/evaluateModel.js';
import { formatShares } from '../../src/data/split.js';

const recorded = JSON.stringify({ data: resolve('data/cifar'), seed: 3, valFraction: 0.1, testFraction: 0.1 });

describe('eval selection', () => {
  it('re-creates the training cut on the data the model trained on (a relative path resolves to it)', () => {
    expect(chooseSelection({ data: 'data/cifar' }, recorded)).toEqual({ seed: 3, valFraction: 0.1, testFraction: 0.1, from: 'recorded' });
  });

  it('never carries the cut to other data, and options win over the record', () => {
    expect(chooseSelection({ data: 'other/images' }, recorded)).toEqual({ seed: 0, valFraction: 0.2, testFraction: 0, from: 'default' });
    expect(chooseSelection({ data: 'data/cifar', seed: 1 }, recorded)).toEqual({ seed: 1, valFraction: 0.1, testFraction: 0.1, from: 'options' });
    expect(chooseSelection({ data: 'data/cifar', shares: '70/15/15' }, recorded)).toMatchObject({ seed: 3, valFraction: 0.15, from: 'options' });
    expect(chooseSelection({ data: 'data/cifar', valFraction: 0.25 }, undefined)).toEqual({ seed: 0, valFraction: 0.25, testFraction: 0, from: 'options' });
    expect(chooseSelection({ data: 'data/cifar' }, undefined)).toMatchObject({ from: 'default', valFraction: 0.2 });
  });

  it('formats shares as percentages', () => {
    expect(formatShares({ valFraction: 0.15, testFraction: 0.15 })).toBe('70/15/15');
    expect(formatShares({ valFraction: 0.2, testFraction: 0 })).toBe('80/20');
    expect(formatShares({ valFraction: 1 / 3, testFraction: 0 })).toBe('66.7/33.3');
  });
});
