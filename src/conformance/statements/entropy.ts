/** Family 'entropy' (spec 5.4, 1.4 numbering): what the device puts in the buffers it is given. */

import type { CheckContext, Statement } from '../statement.js';
import { deviceStatements, driverStatements } from './define.js';
import { exchange, hex, liveDevice, need, type Exchanged } from '../exchange.js';
import { auditedStatement, DRIVER_OWN_STATE } from '../audited-statement.js';
import { DRIVER_REQUIREMENTS as R } from '../../spec/driver-requirements.js';

const device = deviceStatements('entropy');
const driver = driverStatements('entropy');

const REQUEST_BYTES = 64;

/** `count` requests of 64 device-writable bytes each, one after the other, on requestq. */
async function requests(ctx: CheckContext, count: number): Promise<Exchanged[]> {
  const { driver, queues } = await liveDevice(ctx, 0n, [0]);
  const answers: Exchanged[] = [];
  for (let i = 0; i < count; i++) answers.push(await exchange(driver, queues.get(0)!, [], [REQUEST_BYTES], { fill: 0xa5 }));
  return answers;
}

/** Family 'entropy' (see Family in ../statement.ts): spec 5.4, 1.4 numbering. */
export const entropyStatements: readonly Statement[] = [
  device('fills-at-least-one-byte', '5.4.6.2', 'MUST', 'The device puts at least one byte into each buffer it uses.', {
    check: {
      async run(ctx) {
        const [answer] = await requests(ctx, 1);
        need(ctx, answer!.usedLen >= 1, `used len ${answer!.usedLen} for a ${REQUEST_BYTES}-byte buffer`);
      },
    },
  }),
  device('no-write-past-buffer', '5.4.6.2', 'MUST', 'The device writes nothing past the end of the buffer.', {
    check: {
      async run(ctx) {
        const [answer] = await requests(ctx, 1);
        const beyond = answer!.beyond[0]!;
        need(
          ctx,
          beyond.every((b) => b === 0xa5),
          `the 16 bytes after the buffer changed from a5 to ${hex(beyond)}`,
        );
      },
    },
  }),
  device('bytes-random', '5.4.6.2', 'MUST', 'The bytes are random: two answers differ and neither is one repeated byte.', {
    check: {
      async run(ctx) {
        const [a, b] = await requests(ctx, 2);
        const bytesOf = (x: Exchanged): Uint8Array => x.written[0]!.subarray(0, Math.min(x.usedLen, REQUEST_BYTES));
        const [x, y] = [bytesOf(a!), bytesOf(b!)];
        const constant = (v: Uint8Array): boolean => v.length > 8 && v.every((byte) => byte === v[0]);
        const same = x.length > 8 && x.length === y.length && x.every((byte, i) => byte === y[i]);
        need(ctx, !constant(x) && !constant(y) && !same, `answers ${hex(x)} and ${hex(y)}`);
      },
    },
  }),
  auditedStatement('entropy', R.entropyWritableOnly),
  driver('use-used-len', '5.4.6.1', 'MUST', 'The driver takes the used length as the number of random bytes received.', DRIVER_OWN_STATE),
];
