/**
 * The driver audit on the administration virtqueue, planted: a driver that breaks one statement of
 * 2.12.1.6 or 4.1.4.3.2 at a time is recorded under exactly that statement; our AdminQueue, used as
 * documented, is recorded under none.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DriverAudit } from '../../../src/core/driver-audit.js';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import { AdminQueue } from '../../../src/driver/admin/admin-queue.js';
import { VirtioDriver } from '../../../src/driver/virtio-driver.js';
import { Machine } from '../../../src/platform/machine.js';
import {
  encodeCommandList,
  VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ,
  VIRTIO_ADMIN_CMD_LIST_QUERY,
  VIRTIO_ADMIN_CMD_LIST_USE,
  VIRTIO_ADMIN_GROUP_TYPE_SRIOV,
} from '../../../src/spec/admin.js';
import { featureSet, VIRTIO_F_ADMIN_VQ } from '../../../src/spec/features.js';
import { VIRTIO_PCI_COMMON_Q_SELECT, VIRTIO_PCI_COMMON_Q_SIZE, VIRTIO_PCI_STATUS } from '../../../src/spec/virtio-pci.js';
import { RawDriver } from '../../helpers/raw-driver.js';
import { makeAdmin, makeMembers } from './admin-fixture.js';

async function audited(): Promise<{ audit: DriverAudit; admin: AdminQueue }> {
  const audit = new DriverAudit();
  const machine = new Machine({ ramSize: 4 << 20 });
  const { bdf } = machine.plugVirtio(new RngDevice(), { adminQueue: makeAdmin(makeMembers(2)), audit });
  const virtio = await VirtioDriver.open(machine.bus, bdf);
  await virtio.negotiate(featureSet(VIRTIO_F_ADMIN_VQ));
  const admin = await AdminQueue.setup(virtio);
  await virtio.driverOk();
  return { audit, admin };
}

const ids = (audit: DriverAudit): string[] => audit.findings.map((f) => f.requirement.id);
const read = (member: bigint) => ({
  opcode: VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ,
  groupType: VIRTIO_ADMIN_GROUP_TYPE_SRIOV,
  groupMemberId: member,
  data: Uint8Array.of(VIRTIO_PCI_STATUS),
  resultLength: 1,
});

test('audit: our AdminQueue used as documented breaks nothing', async (t) => {
  const { audit, admin } = await audited();
  t.after(() => admin.close());
  await admin.listUse(VIRTIO_ADMIN_GROUP_TYPE_SRIOV, await admin.listQuery(VIRTIO_ADMIN_GROUP_TYPE_SRIOV));
  await admin.legacyCommonCfgWrite(1n, VIRTIO_PCI_STATUS, 1, 1);
  assert.equal(await admin.legacyDevCfgRead(2n, 0, 4), 0x13121110);
  assert.deepEqual(ids(audit), []);
});

test('audit: a command before LIST_USE names it is admin/list-use-first', async (t) => {
  const { audit, admin } = await audited();
  t.after(() => admin.close());
  await admin.send(read(1n));
  assert.deepEqual(ids(audit), ['admin/list-use-first']);
});

test('audit: LIST_USE of an opcode the device does not support is admin/list-use-queried', async (t) => {
  const { audit, admin } = await audited();
  t.after(() => admin.close());
  await admin.send({ opcode: VIRTIO_ADMIN_CMD_LIST_USE, groupType: VIRTIO_ADMIN_GROUP_TYPE_SRIOV, data: encodeCommandList([0, 1, 6]) });
  assert.deepEqual(ids(audit), ['admin/list-use-queried']);
});

test('audit: an SR-IOV member out of 1..NumVFs is admin/sriov-member-range', async (t) => {
  const { audit, admin } = await audited();
  t.after(() => admin.close());
  await admin.listUse(VIRTIO_ADMIN_GROUP_TYPE_SRIOV, await admin.listQuery(VIRTIO_ADMIN_GROUP_TYPE_SRIOV));
  await admin.send(read(3n));
  assert.deepEqual(ids(audit), ['admin/sriov-member-range']);
});

test('audit: LIST_USE made available behind another command is admin/list-use-alone', async (t) => {
  const { audit, admin } = await audited();
  t.after(() => admin.close());
  // Two sends without awaiting the first: AdminQueue serialises them, so this stays clean.
  await Promise.all([
    admin.send({ opcode: VIRTIO_ADMIN_CMD_LIST_QUERY, groupType: VIRTIO_ADMIN_GROUP_TYPE_SRIOV, resultLength: 8 }),
    admin.send({ opcode: VIRTIO_ADMIN_CMD_LIST_USE, groupType: VIRTIO_ADMIN_GROUP_TYPE_SRIOV, data: encodeCommandList([0, 1]) }),
  ]);
  assert.deepEqual(ids(audit), []);

  // A driver putting both on the ring at once is recorded.
  const rawAudit = new DriverAudit();
  const machine = new Machine({ ramSize: 4 << 20 });
  const { bdf } = machine.plugVirtio(new RngDevice(), { adminQueue: makeAdmin(makeMembers(1)), audit: rawAudit });
  const virtio = await VirtioDriver.open(machine.bus, bdf);
  t.after(() => virtio.close());
  await virtio.negotiate(featureSet(VIRTIO_F_ADMIN_VQ));
  const queue = await virtio.setupAdminQueue<number>();
  await virtio.driverOk();
  const parts = [new Uint8Array(24), new Uint8Array(32)];
  parts[0]![2] = VIRTIO_ADMIN_GROUP_TYPE_SRIOV; // LIST_QUERY
  parts[1]![0] = VIRTIO_ADMIN_CMD_LIST_USE;
  parts[1]![2] = VIRTIO_ADMIN_GROUP_TYPE_SRIOV;
  parts[1]!.set(encodeCommandList([0, 1]), 24);
  for (const [i, p] of parts.entries()) {
    const out = virtio.bus.dma.alloc(p.length, 8);
    const inn = virtio.bus.dma.alloc(16, 8);
    out.bytes.set(p);
    queue.submit([{ addr: out.addr, len: p.length }], [{ addr: inn.addr, len: 16 }], i);
  }
  await queue.kick();
  assert.equal((await queue.waitUsed()).length, 2);
  assert.deepEqual(ids(rawAudit), ['admin/list-use-alone']);
});

test('audit: setting up a queue past num_queues outside the administration range is pci-common-cfg/driver-admin-queue-range', async () => {
  const d = await RawDriver.open(new RngDevice(), { adminQueue: makeAdmin(makeMembers(1)) });
  await d.negotiate(featureSet(VIRTIO_F_ADMIN_VQ));
  await d.common(VIRTIO_PCI_COMMON_Q_SELECT, 2, 1); // the administration queue: allowed
  await d.common(VIRTIO_PCI_COMMON_Q_SIZE, 2, 16);
  assert.deepEqual(d.ids, []);
  await d.common(VIRTIO_PCI_COMMON_Q_SELECT, 2, 5);
  await d.common(VIRTIO_PCI_COMMON_Q_SIZE, 2, 16);
  assert.deepEqual(d.ids, ['pci-common-cfg/driver-admin-queue-range']);
});
