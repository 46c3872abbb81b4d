/** RecordingBus: every access by default, only the last `keep` with the option (the engine's bounded evidence). */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError } from '../../../src/errors.js';
import { Machine } from '../../../src/platform/machine.js';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import { RecordingBus } from '../../../src/testing/recording-bus.js';

test('keep bounds the log to the last accesses, oldest first; without it every access is kept', async () => {
  const m = new Machine();
  const { bdf } = m.plugVirtio(new RngDevice());
  const all = new RecordingBus(m.bus);
  const last = new RecordingBus(m.bus, { keep: 3 });
  for (let off = 0; off < 40; off += 4) {
    await all.configRead(bdf, off, 4);
    await last.configRead(bdf, off, 4);
  }
  assert.equal(all.log.length, 10);
  assert.deepEqual(
    last.log.map((a) => a.addr),
    [28, 32, 36],
  );
  assert.deepEqual(last.log, all.log.slice(-3));
  assert.throws(() => new RecordingBus(m.bus, { keep: 0 }), UsageError);
});
