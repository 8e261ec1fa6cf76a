export { buildGradients, NON_DIFFERENTIABLE_OPS, type BuildGradientsRequest } from './buildGradients.js';
export { gradientRules, hasGradientRule } from './registry.js';
export { DEFAULT_FORMULATIONS, NoGradientRuleError, type GradContext, type GradFormulations, type GradRule } from './types.js';
export * as gradHelpers from './helpers.js';
