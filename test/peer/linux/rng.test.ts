/**
 * Linux's virtio_pci (modern interface) binds our virtio-rng function, virtio_rng becomes the
 * kernel's hardware RNG, and /dev/hwrng returns bytes our device produced (a known stream, so the
 * guest's bytes must appear in it, in order).
 */

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import { VIRTIO_ID_RNG, VIRTIO_PCI_MODERN_DEVICE_ID_BASE } from '../../../src/spec/ids.js';
import { VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, VIRTIO_CONFIG_S_DRIVER_OK } from '../../../src/spec/status.js';
import { SLOT, bootTestMachine, pciName, resultOf, type TestMachine } from '../../helpers/linux-machine.js';

/** A stream no 64-byte window of which repeats: SHA-256 of a counter, block after block. */
class KnownStream {
  private produced = Buffer.alloc(0);
  private pool = Buffer.alloc(0);
  private block = 0;

  fill = (dst: Uint8Array): void => {
    while (this.pool.byteLength < dst.byteLength) {
      this.pool = Buffer.concat([this.pool, createHash('sha256').update(`virtio-ts rng ${this.block++}`).digest()]);
    }
    dst.set(this.pool.subarray(0, dst.byteLength));
    this.produced = Buffer.concat([this.produced, this.pool.subarray(0, dst.byteLength)]);
    this.pool = this.pool.subarray(dst.byteLength);
  };

  /** Everything handed to the guest so far. */
  get bytes(): Buffer {
    return this.produced;
  }
}

const stream = new KnownStream();
let m: TestMachine;

before(async () => {
  m = await bootTestMachine({ rng: new RngDevice({ entropy: stream.fill }) });
});

after(async () => {
  await m?.guest.destroy();
});

test('virtio_pci binds the modern virtio-rng function and virtio_rng drives it', async (t) => {
  const out = await m.guest.command('load');
  assert.equal(out.rc, 0, out.results.map((r) => r.text).join('\n'));
  const pci = resultOf(out.results, 'pci', { slot: pciName(SLOT.rng) });
  assert.equal(Number(pci.fields['device']), VIRTIO_PCI_MODERN_DEVICE_ID_BASE + VIRTIO_ID_RNG);
  assert.equal(pci.fields['driver'], 'virtio-pci');
  const dev = resultOf(out.results, 'virtio', { pci: pciName(SLOT.rng) });
  assert.equal(Number(dev.fields['type']), VIRTIO_ID_RNG);
  assert.equal(dev.fields['driver'], 'virtio_rng');
  const status = Number(dev.fields['status']);
  assert.equal(status & VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_DRIVER_OK, `status 0x${status.toString(16)}`);
  assert.equal(status & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, 0, `status 0x${status.toString(16)}`);
  t.diagnostic(`${m.guest.restored ? 'restored' : 'booted'} in ${Math.round(m.guest.bootMs)} ms`);
});

test('/dev/hwrng reads the bytes our device produced', async () => {
  const out = await m.guest.command('rng 64');
  assert.equal(out.rc, 0);
  const rng = resultOf(out.results, 'rng');
  assert.equal(rng.fields['current'], 'virtio_rng.0');
  const bytes = Buffer.from(rng.fields['bytes'] ?? '', 'hex');
  assert.equal(bytes.byteLength, 64);
  assert.ok(stream.bytes.indexOf(bytes) >= 0, `the guest read bytes the device never produced: ${bytes.toString('hex')}`);
  assert.deepEqual(m.guest.adapter.refusedBars, []);
  assert.equal(m.rng.core.fault, undefined);
});
