/**
 * Our driver reads entropy from QEMU's virtio-rng-pci, modern-only and transitional (through the
 * modern interface), on pc and q35. The far end is checked: each device's backend is an
 * `rng-random` object reading a file this test wrote, so the bytes that arrive in our buffers must
 * be that file's bytes, in order.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VirtioDriver } from '../../../src/driver/virtio-driver.js';
import { VIRTIO_ID_RNG } from '../../../src/spec/ids.js';
import { launch, MACHINES, slotBdf, tempDir } from './qemu-fixture.js';

const MODES = [
  { slot: 4, name: 'modern-only', props: 'disable-legacy=on' },
  { slot: 5, name: 'transitional, modern interface', props: 'disable-legacy=off' },
] as const;
const SOURCE_BYTES = 4096;
const REQUEST_BYTES = 64;

/** A byte pattern no two files share: (i * 7 + seed) mod 256. */
function pattern(seed: number): Uint8Array {
  return Uint8Array.from({ length: SOURCE_BYTES }, (_, i) => (i * 7 + seed) & 0xff);
}

for (const machine of MACHINES) {
  test(`-M ${machine}: virtio-rng-pci delivers its backend's bytes`, async (t) => {
    const dir = await tempDir();
    const args: string[] = [];
    for (const m of MODES) {
      await writeFile(join(dir, `rng-${m.slot}.bin`), pattern(m.slot));
      args.push('-object', `rng-random,id=rng${m.slot},filename=${join(dir, `rng-${m.slot}.bin`)}`);
      args.push('-device', `virtio-rng-pci,rng=rng${m.slot},addr=0x${m.slot.toString(16)},${m.props}`);
    }
    const bus = await launch({ machine, args });
    for (const m of MODES) {
      await t.test(m.name, async () => {
        const driver = await VirtioDriver.open(bus, slotBdf(m.slot), { deviceType: VIRTIO_ID_RNG });
        try {
          assert.equal(driver.probe.kind, 'modern');
          await driver.negotiate(0n);
          const queue = await driver.setupQueue<number>(0);
          await driver.driverOk();
          const expected = pattern(m.slot);
          const buffers = [bus.dma.alloc(REQUEST_BYTES, 16), bus.dma.alloc(REQUEST_BYTES, 16)];
          // Two requests, one after the other: the second must carry the file's next bytes.
          for (const [i, buf] of buffers.entries()) {
            queue.submit([], [{ addr: buf.addr, len: REQUEST_BYTES }], i);
            await queue.kick();
            const [done] = await queue.waitUsed();
            assert.deepEqual(done, { token: i, len: REQUEST_BYTES });
            await bus.dma.refresh(buf.addr, REQUEST_BYTES);
            assert.deepEqual([...buf.bytes], [...expected.subarray(i * REQUEST_BYTES, (i + 1) * REQUEST_BYTES)]);
          }
          for (const buf of buffers) bus.dma.free(buf);
        } finally {
          await driver.close();
        }
      });
    }
  });
}
