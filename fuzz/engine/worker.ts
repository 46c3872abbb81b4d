/**
 * Runs one campaign inside a worker thread, so the main thread can end a run that never returns (an
 * unbounded synchronous loop cannot be interrupted from inside). Before each input the worker copies
 * it into shared memory and bumps a heartbeat counter; the main thread watches the counter.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { runCampaign } from './fuzzer.js';
import { HEARTBEAT_INPUT, type WorkerInput, type WorkerMessage } from './protocol.js';
import { TARGETS } from '../targets/index.js';

const { options, heartbeat } = workerData as WorkerInput;
const counters = new Int32Array(heartbeat, 0, 2);
const inputBytes = new Uint8Array(heartbeat, HEARTBEAT_INPUT);
const port = parentPort!;
const load = TARGETS[options.targetName];
if (load === undefined) throw new Error(`no fuzz target ${options.targetName}`);

const stats = await runCampaign(load, options, {
  beforeRun(input, execs) {
    const n = Math.min(input.length, inputBytes.length);
    inputBytes.set(input.subarray(0, n));
    Atomics.store(counters, 1, n);
    Atomics.store(counters, 0, execs + 1);
  },
  onCorpusEntry: (input) => port.postMessage({ type: 'corpus', input } satisfies WorkerMessage),
  onFinding: (finding) => port.postMessage({ type: 'finding', finding } satisfies WorkerMessage),
  onProgress: (s) => port.postMessage({ type: 'progress', stats: s } satisfies WorkerMessage),
});
port.postMessage({ type: 'done', stats } satisfies WorkerMessage);
