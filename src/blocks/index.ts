export { findCuts, pathNodes, type CutOptions } from '../ir/cuts.js';
export { scopePath } from './scopes.js';
export { splitIntoBlocks, splitIntoBlocksDetailed, bodyCuts, BlockSpecError, type Block, type BlockSpec, type SplitMethod, type SplitResult } from './split.js';
