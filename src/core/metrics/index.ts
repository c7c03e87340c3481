/** The metrics and statistics of the evaluations, pure: one import for reports and loops. */
export * from './auroc';
export * from './image';
export * from './classification';
export * from './cluster';
export * from './segmentation';
export * from './stats';
export * from './accumulators';
