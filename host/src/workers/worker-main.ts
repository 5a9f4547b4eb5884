// Entry point of a worker process (cluster.setupPrimary({ exec }) in primary.ts).
import { runWorker } from './worker.js';

runWorker().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
