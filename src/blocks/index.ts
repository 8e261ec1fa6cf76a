export { findCuts, pathNodes, type CutOptions } from './cuts.js';
export { scopePath } from './scopes.js';
export { splitIntoBlocks, splitIntoBlocksDetailed, bodyCuts, BlockSpecError, type Block, type BlockSpec, type SplitMethod, type SplitResult } from './split.js';
export { pretrainedHeadBlock, HEAD_BLOCK_NAME } from './headBlock.js';
