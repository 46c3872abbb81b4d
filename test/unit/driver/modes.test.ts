import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Machine } from '../../../src/platform/machine.js';
import { BlkDevice } from '../../../src/device/blk/blk-device.js';
import { MemoryBlockBackend } from '../../../src/device/blk/memory-backend.js';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import type { EntropySource } from '../../../src/device/rng/entropy.js';
import { BlkDriver } from '../../../src/driver/blk/blk-driver.js';
import { RngDriver } from '../../../src/driver/rng/rng-driver.js';
import type { InterruptEvent } from '../../../src/bus/pci-bus.js';
import type { VirtioPciMode } from '../../../src/transport/pci/virtio-pci-function.js';

/** Every way a device can be offered and driven (issue 3: "Done when"). */
const CASES: { name: string; mode: VirtioPciMode; forceLegacy: boolean; transport: 'modern' | 'legacy' }[] = [
  { name: 'modern-only', mode: 'modern', forceLegacy: false, transport: 'modern' },
  { name: 'transitional (modern path)', mode: 'transitional', forceLegacy: false, transport: 'modern' },
  { name: 'transitional (legacy path, forceLegacy)', mode: 'transitional', forceLegacy: true, transport: 'legacy' },
  { name: 'legacy-only', mode: 'legacy', forceLegacy: false, transport: 'legacy' },
];

function counter(): EntropySource & { produced: number[] } {
  const produced: number[] = [];
  let x = 7;
  const source = ((dst: Uint8Array) => {
    for (let i = 0; i < dst.byteLength; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      dst[i] = x >>> 24;
      produced.push(x >>> 24);
    }
  }) as EntropySource & { produced: number[] };
  source.produced = produced;
  return source;
}

function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

for (const c of CASES) {
  for (const msix of [true, false]) {
    test(`${c.name}, MSI-X ${msix ? 'on' : 'off'}: blk round trip with verified bytes and an rng read`, async (t) => {
      const m = new Machine({ ramSize: 32 << 20 });
      const image = new Uint8Array(1 << 20);
      const blkDev = m.plugVirtio(new BlkDevice({ backend: new MemoryBlockBackend(image) }), { mode: c.mode, msixVectors: msix ? 2 : 0 });
      const entropy = counter();
      const rngDev = m.plugVirtio(new RngDevice({ entropy }), { mode: c.mode, msixVectors: msix ? 2 : 0 });
      const events: InterruptEvent['kind'][] = [];
      m.bus.onInterrupt(blkDev.bdf, (e) => events.push(e.kind));

      const blk = await BlkDriver.open(m.bus, blkDev.bdf, { forceLegacy: c.forceLegacy });
      t.after(() => blk.close());
      assert.equal(blk.virtio.transport.kind, c.transport);
      assert.equal(blk.virtio.interrupts?.kind, msix ? 'msix-per-queue' : 'intx', blk.virtio.interrupts?.description);
      const data = pattern(64 * 512, 99);
      await blk.write(100, data);
      assert.deepEqual(image.subarray(100 * 512, 164 * 512), data, 'the backend holds the bytes written');
      assert.deepEqual(await blk.read(100, 64), data, 'read back the same bytes');
      assert.ok(events.length > 0);
      assert.ok(
        events.every((k) => k === (msix ? 'msi' : 'intx')),
        `only ${msix ? 'MSI' : 'INTx'} events: ${events.join(',')}`,
      );
      if (c.mode === 'transitional') assert.equal(blkDev.fn.arbiter?.ignoredAccesses, 0, 'the driver used one interface only');

      const rng = await RngDriver.open(m.bus, rngDev.bdf, { forceLegacy: c.forceLegacy });
      t.after(() => rng.close());
      const bytes = await rng.read(300);
      assert.deepEqual([...bytes], entropy.produced);
    });
  }
}
