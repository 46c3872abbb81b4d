/**
 * The driver half of the administration virtqueue against a hostile device: admin_queue_index and
 * admin_queue_num that break 4.1.4.3.1, and answers with reserved statuses, short used lengths,
 * endless EAGAIN, or none at all (an overlong used length is the ring's ERR_DEVICE_USED_LEN, tested
 * with the rings). Each is a typed error, never a hang or a crash.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AdminQueueHandler } from '../../../src/core/admin-queue-handler.js';
import { AdminQueue } from '../../../src/driver/admin/admin-queue.js';
import { VirtioDriver } from '../../../src/driver/virtio-driver.js';
import { AdminCommandError, DeviceFaultError } from '../../../src/errors.js';
import { Machine } from '../../../src/platform/machine.js';
import type { DeviceQueue } from '../../../src/queue/types.js';
import { featureSet, VIRTIO_F_ADMIN_VQ } from '../../../src/spec/features.js';
import { VIRTIO_PCI_COMMON_ADM_Q_IDX, VIRTIO_PCI_COMMON_ADM_Q_NUM } from '../../../src/spec/virtio-pci.js';
import { MODERN_BAR, MODERN_COMMON_OFFSET } from '../../../src/transport/pci/modern-device.js';
import { both, onBarRead, plug, rng } from '../conformance/mutants/pci-function-mutant.js';
import { writeChain } from '../../../src/device/chain-bytes.js';
import type { Bdf } from '../../../src/bus/pci-bus.js';
import { RngDevice } from '../../../src/device/rng/rng-device.js';

const ADMIN = featureSet(VIRTIO_F_ADMIN_VQ);

/** A handler answering every chain with `bytes` (cut to the writable part) and a used length of `len(writable)`. */
function answering(
  bytes: Uint8Array,
  len: (writable: number) => number = (w) => Math.min(w, bytes.length),
): AdminQueueHandler & { served: number } {
  return {
    queueMaxSize: 8,
    served: 0,
    serve(queue: DeviceQueue): boolean {
      let pushed = false;
      for (let chain = queue.pop(); chain; chain = queue.pop()) {
        writeChain(chain, 0, bytes.subarray(0, Math.min(bytes.length, chain.writableBytes)));
        queue.pushUsed(chain.head, len(chain.writableBytes));
        this.served++;
        pushed = true;
      }
      return pushed;
    },
    reset() {},
  };
}

async function open(machine: Machine, bdf: Bdf, timeoutMs = 5000): Promise<VirtioDriver> {
  const virtio = await VirtioDriver.open(machine.bus, bdf, { timeoutMs });
  await virtio.negotiate(ADMIN);
  return virtio;
}

for (const [what, index, num] of [
  ['admin_queue_index inside the regular queues', 0, 1],
  ['admin_queue_num 0', 1, 0],
  ['a range past queue index 0xffff', 0xffff, 2],
] as const) {
  test(`hostile range: ${what} is refused before any queue is set up`, async (t) => {
    const m = new Machine({ ramSize: 4 << 20 });
    const bdf = plug(m, rng({ adminQueue: answering(new Uint8Array(8)) }), [
      both(
        onBarRead(MODERN_BAR, MODERN_COMMON_OFFSET + VIRTIO_PCI_COMMON_ADM_Q_IDX, () => index),
        onBarRead(MODERN_BAR, MODERN_COMMON_OFFSET + VIRTIO_PCI_COMMON_ADM_Q_NUM, () => num),
      ),
    ]);
    const virtio = await open(m, bdf);
    t.after(() => virtio.close());
    await assert.rejects(AdminQueue.setup(virtio), (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_QUEUE');
  });
}

async function adminOver(handler: AdminQueueHandler, timeoutMs = 5000): Promise<AdminQueue> {
  const m = new Machine({ ramSize: 4 << 20 });
  const { bdf } = m.plugVirtio(new RngDevice(), { adminQueue: handler });
  const virtio = await open(m, bdf, timeoutMs);
  const admin = await AdminQueue.setup(virtio);
  await virtio.driverOk();
  return admin;
}

test('hostile answer: a reserved status and qualifier are an error named as EINVAL / INVALID_COMMAND', async (t) => {
  const admin = await adminOver(answering(Uint8Array.of(99, 0, 0x99, 0, 0, 0, 0, 0, 3)));
  t.after(() => admin.close());
  await assert.rejects(
    admin.listQuery(0),
    (e: unknown) =>
      e instanceof AdminCommandError &&
      e.code === 'ERR_ADMIN_STATUS' &&
      e.status === 99 &&
      e.statusQualifier === 0x99 &&
      /reserved: as EINVAL/.test(e.message) &&
      /reserved: as INVALID_COMMAND/.test(e.message),
  );
});

test('hostile answer: used length 0 reads as all zero: status OK, but a LIST_QUERY list without its own opcodes', async (t) => {
  const admin = await adminOver(answering(new Uint8Array(16).fill(0xff), () => 0));
  t.after(() => admin.close());
  const raw = await admin.send({ opcode: 0, groupType: 0, resultLength: 8 });
  assert.deepEqual(
    [raw.status, raw.usedLength, [...raw.result]],
    [0, 0, [0, 0, 0, 0, 0, 0, 0, 0]],
    'bytes past the used length are not read',
  );
  await assert.rejects(admin.listQuery(0), (e: unknown) => e instanceof AdminCommandError && e.code === 'ERR_ADMIN_RESULT');
});

test('hostile answer: EAGAIN is retried, then reported', async (t) => {
  const handler = answering(Uint8Array.of(11, 0, 7, 0, 0, 0, 0, 0));
  const admin = await adminOver(handler);
  t.after(() => admin.close());
  await assert.rejects(admin.listQuery(0), (e: unknown) => e instanceof AdminCommandError && e.status === 11);
  assert.equal(handler.served, 4, 'one try and three retries');
});

test('hostile answer: no answer at all is a timeout, and close() still releases everything', async () => {
  const silent: AdminQueueHandler = { queueMaxSize: 8, serve: () => false, reset() {} };
  const admin = await adminOver(silent, 50);
  await assert.rejects(admin.listQuery(0), (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_TIMEOUT');
  await admin.close();
});
