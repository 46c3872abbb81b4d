// VIRTIO_F_SUSPEND (3.4) and snapshots (docs/snapshots.md, docs/suspend.md): a snapshot of a
// suspended device carries no chain in flight, and the device restored from it stays suspended until
// the driver resumes it, then serves what was left in its rings; a snapshot taken while a suspension
// waits for reads in flight carries them, and the restored device finishes them, shows itself
// suspended, and takes nothing else until the resume. Both rings, blk with a slow backend.
import assert from 'node:assert/strict';
import { BlkDevice } from '../../../src/device/blk/blk-device.js';
import { VirtioDriver } from '../../../src/driver/virtio-driver.js';
import type { DriverQueue } from '../../../src/driver/driver-queue.js';
import type { DeviceHost } from '../../../src/pci/function.js';
import { Machine } from '../../../src/platform/machine.js';
import { decodeSnapshot, encodeSnapshot } from '../../../src/snapshot/codec.js';
import { SnapshotReader } from '../../../src/snapshot/snapshot-reader.js';
import type { FunctionSnapshot } from '../../../src/snapshot/snapshot-value.js';
import { VirtioPciFunction, type VirtioPciFunctionOptions } from '../../../src/transport/pci/virtio-pci-function.js';
import { MODERN_BAR } from '../../../src/transport/pci/modern-device.js';
import { VIRTIO_PCI_COMMON_STATUS } from '../../../src/spec/virtio-pci.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_CONFIG_S_SUSPEND,
} from '../../../src/spec/status.js';
import { blkRead } from '../../helpers/blk-request.js';
import { DeferredBackend } from '../../helpers/deferred-backend.js';
import { eachRing, offering, type RingName } from '../../helpers/ring-formats.js';

const LIVE = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK;
const SUSPENDED = (LIVE & ~VIRTIO_CONFIG_S_DRIVER_OK) | VIRTIO_CONFIG_S_SUSPEND;
const disk = Uint8Array.from({ length: 64 * 512 }, (_, i) => (i * 11 + (i >> 9)) & 0xff);

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const status = (fn: VirtioPciFunction): number => fn.barRead(MODERN_BAR, VIRTIO_PCI_COMMON_STATUS, 1);

interface Setup {
  readonly m: Machine;
  readonly fn: VirtioPciFunction;
  readonly host: DeviceHost;
  readonly options: VirtioPciFunctionOptions;
  readonly backend: DeferredBackend;
  readonly drv: VirtioDriver;
  readonly q: DriverQueue<number>;
  readonly reads: { readonly data: Uint8Array; readonly status: Uint8Array }[];
}

/** A live blk (two requests in flight at most) with reads of sectors 0..3 made available and notified. */
async function setup(ring: RingName): Promise<Setup> {
  const m = new Machine({ ramSize: 4 << 20 });
  const backend = new DeferredBackend(disk.slice());
  const options: VirtioPciFunctionOptions = { ...offering(ring) };
  let host: DeviceHost | undefined;
  const { bdf, fn } = m.plug((h) => {
    host = h;
    return new VirtioPciFunction(new BlkDevice({ backend, maxInFlight: 2 }), h, options);
  });
  // Polling: completions of the restored function are reaped from the ring, whatever interrupt it sends.
  const drv = await VirtioDriver.open(m.bus, bdf, { timeoutMs: 2000, pollIntervalMs: 5 });
  await drv.negotiate(0n);
  const q = await drv.setupQueue<number>(0);
  await drv.driverOk();
  const reads = [0, 1, 2, 3].map((sector) => blkRead(m, q, sector));
  await q.kick();
  assert.equal(backend.pending.length, 2);
  return { m, fn, host: host!, options, backend, drv, q, reads };
}

/** Chains in flight on queue 0 in `snapshot`. */
function chainsInFlight(snapshot: FunctionSnapshot): number {
  const [q0] = new SnapshotReader(snapshot.fields, 'function').struct('core').structs('queues', 16);
  return q0!.struct('ring').structs('chains', 1024).length;
}

/** Save `s.fn` (encoded and decoded) and restore it into a fresh blk over a copy of the disk; the new function and backend. */
function saveAndRestore(s: Setup): { fn: VirtioPciFunction; backend: DeferredBackend; snapshot: FunctionSnapshot } {
  const snapshot = decodeSnapshot(encodeSnapshot(s.fn.snapshot()));
  const backend = new DeferredBackend(s.backend.inner.bytes.slice());
  const fn = new VirtioPciFunction(new BlkDevice({ backend, maxInFlight: 2 }), s.host, s.options);
  fn.restore(snapshot);
  return { fn, backend, snapshot };
}

async function collect(q: DriverQueue<number>, count: number): Promise<number[]> {
  const tokens: number[] = [];
  while (tokens.length < count) for (const c of await q.waitUsed()) tokens.push(c.token);
  return tokens.sort();
}

function checkReads(s: Setup): void {
  s.reads.forEach((r, sector) => {
    assert.equal(r.status[0], 0, `sector ${sector}: VIRTIO_BLK_S_OK`);
    assert.deepEqual(r.data, disk.subarray(sector * 512, (sector + 1) * 512));
  });
}

eachRing('a snapshot of a suspended device has nothing in flight; restored, it stays suspended until resumed', async (ring, t) => {
  const s = await setup(ring);
  t.after(() => s.drv.close());
  const suspending = s.drv.suspend();
  s.backend.releaseAll();
  await suspending;
  assert.deepEqual(await collect(s.q, 2), [0, 1]);
  const { fn, backend, snapshot } = saveAndRestore(s);
  assert.equal(chainsInFlight(snapshot), 0, 'nothing in flight');
  assert.equal(status(fn), SUSPENDED, 'restored suspended');
  fn.core.notify(0);
  await tick();
  assert.equal(backend.pending.length, 0, 'the restored device takes nothing while suspended');
  fn.barWrite(MODERN_BAR, VIRTIO_PCI_COMMON_STATUS, 1, LIVE);
  assert.equal(status(fn), LIVE, 'resumed');
  assert.equal(backend.pending.length, 2, 'the reads left in the ring start at resume');
  backend.releaseAll();
  assert.deepEqual(await collect(s.q, 2), [2, 3], 'completed once, by the restored device');
  checkReads(s);
});

eachRing(
  'a snapshot taken while a suspension waits carries the reads in flight; restored, they finish and nothing else starts',
  async (ring, t) => {
    const s = await setup(ring);
    t.after(async () => {
      // The reset of the function saved (still under the driver) waits for its two reads: they settle, dropped.
      const closing = s.drv.close();
      s.backend.releaseAll();
      await closing;
    });
    s.fn.barWrite(MODERN_BAR, VIRTIO_PCI_COMMON_STATUS, 1, LIVE | VIRTIO_CONFIG_S_SUSPEND);
    assert.equal(status(s.fn), LIVE | VIRTIO_CONFIG_S_SUSPEND, 'suspension under way');
    const { fn, backend, snapshot } = saveAndRestore(s);
    assert.equal(chainsInFlight(snapshot), 2, 'the two reads in flight are in the snapshot');
    assert.equal(status(fn), LIVE | VIRTIO_CONFIG_S_SUSPEND, 'restored with the suspension under way');
    assert.equal(backend.pending.length, 2, 'the restored device re-submitted the two reads, and only them');
    backend.releaseAll();
    await tick();
    assert.equal(status(fn), SUSPENDED, 'suspended once they were used');
    assert.deepEqual(await collect(s.q, 2), [0, 1]);
    fn.barWrite(MODERN_BAR, VIRTIO_PCI_COMMON_STATUS, 1, LIVE);
    assert.equal(backend.pending.length, 2);
    backend.releaseAll();
    assert.deepEqual(await collect(s.q, 2), [2, 3]);
    checkReads(s);
  },
);
