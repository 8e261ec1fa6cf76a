export { findCuts, pathNodes, type CutOptions } from './cuts.js';
export { scopePath } from '../ir/scopes.js';
export { splitIntoBlocks, splitIntoBlocksDetailed, bodyCuts, BlockSpecError, type Block, type BlockSpec, type SplitMethod, type SplitResult } from './split.js';
