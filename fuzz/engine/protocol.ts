/** Messages and shared memory between the fuzz main thread and a campaign worker. */

import type { CampaignOptions, CampaignStats, Finding } from './fuzzer.js';

export interface WorkerInput {
  readonly options: CampaignOptions;
  /** Int32 [0] heartbeat (execs), [1] input length, then the input bytes from byte 8. */
  readonly heartbeat: SharedArrayBuffer;
}

export type WorkerMessage =
  | { readonly type: 'corpus'; readonly input: Uint8Array }
  | { readonly type: 'finding'; readonly finding: Finding }
  | { readonly type: 'progress'; readonly stats: CampaignStats }
  | { readonly type: 'done'; readonly stats: CampaignStats };

/** Byte offset of the current input inside the heartbeat buffer. */
export const HEARTBEAT_INPUT = 8;
