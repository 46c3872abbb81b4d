/**
 * Our driver reads entropy from QEMU's virtio-rng-pci in every mode of DRIVER_MODES (modern-only,
 * transitional through either interface, legacy-only; MSI-X and INTx; the modern ones with packed=on too), on pc and q35. The far end is checked: each device's backend is an
 * `rng-random` object reading a file this test wrote, so the bytes that arrive in our buffers must
 * be that file's bytes, in order.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RngDriver } from '../../../src/driver/rng/rng-driver.js';
import { DRIVER_MODES, launch, MACHINES, slotBdf, tempDir } from './qemu-fixture.js';

const MODES = DRIVER_MODES;
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
        // One request per read: 64-byte chunks, so the second read is the device's second answer.
        const rng = await RngDriver.open(bus, slotBdf(m.slot), {
          chunkSize: REQUEST_BYTES,
          forceLegacy: m.forceLegacy,
          interrupts: m.interrupts,
        });
        try {
          assert.equal(rng.virtio.probe.kind, m.kind);
          assert.equal(rng.virtio.interrupts?.kind, m.plan);
          assert.equal(rng.virtio.ringFormat.name, m.ring);
          const expected = pattern(m.slot);
          assert.deepEqual([...(await rng.read(REQUEST_BYTES))], [...expected.subarray(0, REQUEST_BYTES)]);
          assert.deepEqual([...(await rng.read(REQUEST_BYTES))], [...expected.subarray(REQUEST_BYTES, 2 * REQUEST_BYTES)]);
        } finally {
          await rng.close();
        }
      });
    }
  });
}
