/**
 * The whole stack with every ring and buffer above 4 GiB: the driver's DMA memory is high RAM, so
 * any address truncated to 32 bits on either half would land in low RAM (or nowhere) and show.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Machine, HIGH_RAM_BASE } from '../../../src/platform/machine.js';
import { BlkDevice } from '../../../src/device/blk/blk-device.js';
import { MemoryBlockBackend } from '../../../src/device/blk/memory-backend.js';
import { BlkDriver } from '../../../src/driver/blk/blk-driver.js';

test('blk round trip with DMA memory above 4 GiB; low RAM stays untouched', async (t) => {
  const m = new Machine({ ramSize: 1 << 20, highRamSize: 8 << 20, dmaRegion: 'high' });
  const backend = new MemoryBlockBackend(256 * 512);
  const { bdf, fn } = m.plugVirtio(new BlkDevice({ backend }));
  const blk = await BlkDriver.open(m.bus, bdf);
  t.after(() => blk.close());
  for (const area of ['desc', 'driver', 'device'] as const)
    assert.ok(fn.core.queues[0]!.ringAddress(area) >= HIGH_RAM_BASE, `${area} ring above 4 GiB`);
  const data = Uint8Array.from({ length: 8 * 512 }, (_, i) => (i * 7 + 3) & 0xff);
  await blk.write(16, data);
  assert.deepEqual(backend.bytes.subarray(16 * 512, 24 * 512), data);
  assert.deepEqual(await blk.read(16, 8), data);
  const low = m.memory.view(0, 1 << 20);
  assert.ok(
    low.every((b) => b === 0),
    'nothing was written to a truncated (low) address',
  );
});
