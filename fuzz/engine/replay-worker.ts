/**
 * Replays one input of one target in a worker thread and posts the outcome. Used for inputs of open
 * findings, whose stray background rejections must not reach the process that replays them (a test
 * runner counts those against whatever test is running).
 */

import { parentPort, workerData } from 'node:worker_threads';
import { TARGETS } from '../targets/index.js';

export interface ReplayRequest {
  readonly target: string;
  readonly data: Uint8Array;
}
export type ReplayOutcome = { readonly ok: true } | { readonly ok: false; readonly message: string };

const { target, data } = workerData as ReplayRequest;
const stray: unknown[] = [];
process.on('unhandledRejection', (reason) => void stray.push(reason));
let outcome: ReplayOutcome;
try {
  await (await TARGETS[target]!()).run(data);
  outcome = stray.length === 0 ? { ok: true } : { ok: false, message: `unhandled rejection: ${String(stray[0])}` };
} catch (err) {
  outcome = { ok: false, message: err instanceof Error ? err.message : String(err) };
}
parentPort!.postMessage(outcome);
