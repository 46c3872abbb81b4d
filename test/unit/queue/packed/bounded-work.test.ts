import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtioNetDevice } from '../../../../src/device/net/net-device.js';
import { RngDevice } from '../../../../src/device/rng/rng-device.js';
import type { DeviceQueue } from '../../../../src/queue/types.js';
import { featureSet, VIRTIO_F_VERSION_1 } from '../../../../src/spec/features.js';
import { netRxQueueIndex, netTxQueueIndex, VIRTIO_NET_HDR_SIZE } from '../../../../src/spec/net.js';
import { MockPackedQueue, type MockRing } from '../../../../src/testing.js';
import { activateDevice, activatePackedDevice, type HarnessOptions } from '../../../helpers/device-harness.js';
import { ethFrame, mac, RecordingNetBackend } from '../../../helpers/net-frames.js';

test('one pass pops only what the driver made available before it: at most `size` descriptors, whatever earlier laps left', () => {
  for (const size of [1, 3, 8, 13]) {
    const m = new MockPackedQueue({ size, seed: size });
    const q = m.deviceQueue({ indirect: true });
    let shape = size;
    for (let pass = 0; pass < 8; pass++) {
      // The driver fills every free slot with chains of 1..3 descriptors (or indirect ones).
      let made = 0;
      for (;;) {
        shape = (shape * 5 + 3) % 7;
        const n = Math.min(1 + (shape % 3), m.numFree);
        if (n === 0) break;
        m.addChain({ writable: new Array<number>(n).fill(1), indirect: shape === 6 });
        made++;
      }
      // The device pops until the ring says empty, returning each chain at once (as rng does): the
      // used descriptors it writes, and the previous laps' descriptors in the skipped slots, never
      // look available.
      let popped = 0;
      for (let c = q.pop(); c; c = q.pop()) {
        q.pushUsed(c.head, 0);
        popped++;
        assert.ok(popped <= size, `size ${size}: more than ${size} chains in one pass`);
      }
      assert.equal(popped, made, `size ${size}, pass ${pass}`);
      assert.equal(m.readUsed().length, made);
    }
  }
});

const OWN = mac(0x02, 0, 0, 0, 0, 0x01);
const PEER = mac(0x02, 0, 0, 0, 0, 0x02);
const TX = netTxQueueIndex(0);

for (const format of ['split', 'packed'] as const) {
  test(`${format} ring: a driver refilling the transmit queue on every used buffer gets \`size\` chains per pass, the rest in a later task`, async () => {
    const size = 8;
    const refills = 3 * size;
    const backend = new RecordingNetBackend();
    const dev = new VirtioNetDevice({ backend, mac: OWN });
    let left = refills;
    let refill = (): void => {};
    // The driver adds one chain each time the device returns one, while the device is still in its pass.
    const intercept = (index: number, queue: DeviceQueue): DeviceQueue =>
      index !== TX
        ? queue
        : {
            index: queue.index,
            size: queue.size,
            pop: () => queue.pop(),
            pushUsed: (id, len) => {
              queue.pushUsed(id, len);
              refill();
            },
            needsInterrupt: () => queue.needsInterrupt(),
            setNotification: (enabled) => queue.setNotification(enabled),
            hasAvailable: () => queue.hasAvailable(),
            position: () => queue.position(),
          };
    const options: HarnessOptions = { size, enabled: [netRxQueueIndex(0), TX], intercept };
    const h =
      format === 'packed'
        ? activatePackedDevice(dev, featureSet(VIRTIO_F_VERSION_1), options)
        : activateDevice(dev, featureSet(VIRTIO_F_VERSION_1), options);
    const tx: MockRing = h.q(TX);
    const frame = ethFrame(PEER, OWN, 40);
    const request = new Uint8Array(VIRTIO_NET_HDR_SIZE + frame.length); // a zero header, then the frame
    request.set(frame, VIRTIO_NET_HDR_SIZE);
    const send = (): void => {
      tx.addChain({ readable: [request] });
    };
    refill = () => {
      tx.readUsed();
      if (left > 0) {
        left--;
        send();
      }
    };
    for (let i = 0; i < size; i++) send();
    dev.queueNotify(TX);
    assert.equal(backend.sent.length, size, 'the synchronous pass ends after `size` chains');
    assert.equal(left, refills - size);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(backend.sent.length, size + refills, 'the chains added meanwhile are sent in later tasks');
  });
}

test('virtio-rng on a packed queue: requests filled, used in order; a hostile chain asks for a reset', () => {
  const dev = new RngDevice({ entropy: (dst) => dst.fill(0x5a), queueSize: 8 });
  const h = activatePackedDevice(dev, 0n, { size: 5 });
  const q = h.q(0);
  const ids = [q.addChain({ writable: [3, 4] }), q.addChain({ writable: [2] })];
  dev.queueNotify(0);
  assert.deepEqual(q.readUsed(), [
    { id: ids[0], len: 7 },
    { id: ids[1], len: 2 },
  ]);
  assert.deepEqual([...q.readWritten(ids[0]!, 7)], new Array<number>(7).fill(0x5a));
  assert.deepEqual(h.host.used, [0]);
  q.publish([{ addr: q.alloc(4), len: 4, id: 0, flags: 1 /* NEXT, into a slot never made available */ }]);
  dev.queueNotify(0);
  assert.equal(h.host.resets.length, 1);
  assert.equal((h.host.resets[0] as { code?: string }).code, 'ERR_QUEUE_DESC_NOT_AVAILABLE');
});
