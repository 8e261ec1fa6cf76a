import type { GradRule } from '../types.js';
import { Reshape } from './Reshape.js';

/** Only the shape changes: dx = dy reshaped to x's shape. */
export const Flatten: GradRule = Reshape;
