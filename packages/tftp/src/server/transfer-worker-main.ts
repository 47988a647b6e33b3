import { parentPort, workerData } from 'node:worker_threads';
import { runTransferWorker } from './transfer-worker.js';
import type { TransferWorkerConfig } from './worker-messages.js';

// Entry point of a transfer worker thread (started by TransferWorkerPool). Loaded
// anywhere else it does nothing.
if (parentPort) runTransferWorker(parentPort, workerData as TransferWorkerConfig);
