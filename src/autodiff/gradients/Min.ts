import type { GradRule } from '../types.js';
import { Max } from './Max.js';

/** Element-wise Min: dy goes to the inputs equal to the result (same rule as Max). */
export const Min: GradRule = Max;
