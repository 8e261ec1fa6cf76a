export { scopePath } from '../ir/scopes.js';
export type { Block, TrainBlock } from './block.js';
export { splitIntoBlocks, splitIntoBlocksDetailed, bodyCuts, BlockSpecError, type SplitBlock, type BlockSpec, type SplitMethod, type SplitResult } from './split.js';
export { pretrainedHeadBlock, HEAD_BLOCK_NAME } from './headBlock.js';
