// Entry point of a task-server worker process (forked by the primary through node:cluster).
import { runTaskServerWorker } from './worker.js';

await runTaskServerWorker();
