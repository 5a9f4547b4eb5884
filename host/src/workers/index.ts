// The multi-worker proxy (node:cluster): see primary.ts for the design.
export { runPrimaryCommand } from './cli.js';
export { resolveWorkers, workerView, perWorkerPath } from './worker-config.js';
export { startPrimary, type PrimaryOptions, type RunningPrimary } from './primary.js';
