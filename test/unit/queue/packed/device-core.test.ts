import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceCore, type DriverNotification } from '../../../../src/core/device-core.js';
import { QueueFaultError } from '../../../../src/errors.js';
import { ArrayGuestMemory } from '../../../../src/memory/guest-memory.js';
import { PackedQueue } from '../../../../src/queue/packed/device-ring.js';
import { GatedQueue } from '../../../../src/core/device-suspend.js';
import { featureSet, featureWord } from '../../../../src/spec/features.js';
import { MockPackedQueue } from '../../../../src/testing.js';
import { LoopbackDevice } from '../../../helpers/loopback-device.js';

// Status bits (2.1) and feature bits (6) written out from the spec.
const ACKNOWLEDGE = 1;
const DRIVER = 2;
const DRIVER_OK = 4;
const FEATURES_OK = 8;
const DEVICE_NEEDS_RESET = 64;
const VIRTIO_F_VERSION_1 = 32;
const VIRTIO_F_RING_PACKED = 34;

/** A driver's initialisation (3.1.1) with the packed ring, a queue of `size` set up over `m`'s areas. */
function initialise(core: DeviceCore, m: MockPackedQueue, size: number): void {
  core.writeStatus(0);
  core.writeStatus(ACKNOWLEDGE);
  core.writeStatus(ACKNOWLEDGE | DRIVER);
  const features = featureSet(VIRTIO_F_VERSION_1, VIRTIO_F_RING_PACKED);
  for (const select of [0, 1]) core.setDriverFeatureWord(select, featureWord(features, select));
  core.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK);
  assert.equal(core.status & FEATURES_OK, FEATURES_OK);
  core.setQueueSize(0, size);
  for (const [area, addr] of [
    ['desc', m.descAddr],
    ['driver', m.driverAddr],
    ['device', m.deviceAddr],
  ] as const) {
    core.setQueueRingHalf(0, area, 0, addr);
    core.setQueueRingHalf(0, area, 1, 0);
  }
  core.enableQueue(0);
  core.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
}

test('through the device core: a packed queue of 7, a fault sets DEVICE_NEEDS_RESET, a fresh ring after reset works', () => {
  const memory = new ArrayGuestMemory(1 << 20);
  // The loopback device offers VIRTIO_F_RING_PACKED itself (the transport does not offer it yet).
  const device = new LoopbackDevice({ deviceFeatures: featureSet(VIRTIO_F_RING_PACKED), queueMaxSizes: [8] });
  const sent: DriverNotification[] = [];
  const core = new DeviceCore(device, memory, { notify: (n) => sent.push(n), reset: () => {} });
  const first = new MockPackedQueue({ size: 7, memory });
  initialise(core, first, 7);
  // 2.8.10.1: with the packed ring a queue size need not be a power of two.
  assert.equal(core.queues[0]!.size, 7);
  // The model holds its queue behind the suspend gate (core/device-suspend.ts), over the packed ring.
  const queue = device.queues[0];
  assert.ok(queue instanceof GatedQueue && queue.ring instanceof PackedQueue);
  assert.equal(queue.size, 7);
  const id = first.addChain({ readable: [Uint8Array.of(1, 2, 3)], writable: [3] });
  core.notify(0);
  assert.deepEqual(first.readUsed(), [{ id, len: 3 }]);
  assert.deepEqual([...first.readWritten(id, 3)], [1, 2, 3]);
  assert.deepEqual(sent, [{ kind: 'used-buffer', queue: 0 }]);

  // A buffer id beyond the queue: the queue faults and the device stops.
  first.publish([{ addr: first.alloc(4), len: 4, id: 7, flags: 0 }]);
  core.notify(0);
  assert.equal(core.status & DEVICE_NEEDS_RESET, DEVICE_NEEDS_RESET);
  assert.ok(core.fault instanceof QueueFaultError);
  assert.equal(core.fault.code, 'ERR_QUEUE_BUFFER_ID');

  // Reset, then a new ring elsewhere in memory: the device works from wrap counter 1 and position 0 again.
  core.writeStatus(0);
  assert.equal(core.status, 0);
  const fresh = new MockPackedQueue({ size: 5, memory, base: 1 << 19 });
  initialise(core, fresh, 5);
  assert.equal(core.status & DEVICE_NEEDS_RESET, 0);
  const again = device.queues[0];
  assert.ok(again instanceof GatedQueue && again.ring instanceof PackedQueue && again.ring !== queue.ring);
  for (let i = 0; i < 12; i++) {
    const n = fresh.addChain({ readable: [Uint8Array.of(i)], writable: [1] });
    core.notify(0);
    assert.deepEqual(fresh.readUsed(), [{ id: n, len: 1 }]);
    assert.deepEqual([...fresh.readWritten(n, 1)], [i]);
  }
});
