/**
 * The administration virtqueue end to end: our driver half (VirtioDriver + driver/admin) against
 * our device half (device/admin on the PCI transport), in process.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdminQueue } from '../../../src/driver/admin/admin-queue.js';
import { VirtioDriver } from '../../../src/driver/virtio-driver.js';
import { AdminCommandError, DeviceFaultError, UsageError } from '../../../src/errors.js';
import {
  VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ,
  VIRTIO_ADMIN_GROUP_TYPE_SELF,
  VIRTIO_ADMIN_GROUP_TYPE_SRIOV,
  VIRTIO_ADMIN_STATUS_EINVAL,
  VIRTIO_ADMIN_STATUS_Q_INVALID_FIELD,
  VIRTIO_ADMIN_STATUS_Q_INVALID_MEMBER,
  VIRTIO_ADMIN_STATUS_Q_INVALID_OPCODE,
} from '../../../src/spec/admin.js';
import { featureSet, hasFeature, VIRTIO_F_ADMIN_VQ } from '../../../src/spec/features.js';
import { VIRTIO_CONFIG_S_ACKNOWLEDGE, VIRTIO_CONFIG_S_DRIVER } from '../../../src/spec/status.js';
import {
  VIRTIO_PCI_COMMON_ADM_Q_IDX,
  VIRTIO_PCI_COMMON_ADM_Q_NUM,
  VIRTIO_PCI_GUEST_FEATURES,
  VIRTIO_PCI_HOST_FEATURES,
  VIRTIO_PCI_QUEUE_NUM,
  VIRTIO_PCI_STATUS,
} from '../../../src/spec/virtio-pci.js';
import { MODERN_BAR, MODERN_COMMON_OFFSET } from '../../../src/transport/pci/modern-device.js';
import { Machine } from '../../../src/platform/machine.js';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import { ownerMachine, type Owner } from './admin-fixture.js';

const ADMIN = featureSet(VIRTIO_F_ADMIN_VQ);

async function openAdmin(o: Owner, options: { interrupts?: 'intx' | 'msix' } = {}): Promise<AdminQueue> {
  const virtio = await VirtioDriver.open(o.machine.bus, o.bdf, options);
  await virtio.negotiate(ADMIN);
  const admin = await AdminQueue.setup(virtio);
  await virtio.driverOk();
  return admin;
}

const expectStatus = (status: number, qualifier: number) => (e: unknown) =>
  e instanceof AdminCommandError && e.code === 'ERR_ADMIN_STATUS' && e.status === status && e.statusQualifier === qualifier;

test('admin: ADMIN_VQ is offered with an administration queue only; its fields read 0 until negotiated', async (t) => {
  const plain = new Machine({ ramSize: 4 << 20 });
  const { bdf } = plain.plugVirtio(new RngDevice());
  const d0 = await VirtioDriver.open(plain.bus, bdf);
  t.after(() => d0.close());
  assert.equal(hasFeature(d0.deviceFeatures, VIRTIO_F_ADMIN_VQ), false);

  const o = ownerMachine();
  const common = (field: number): number => o.owner.barRead(MODERN_BAR, MODERN_COMMON_OFFSET + field, 2);
  const virtio = await VirtioDriver.open(o.machine.bus, o.bdf);
  t.after(() => virtio.close());
  assert.equal(hasFeature(virtio.deviceFeatures, VIRTIO_F_ADMIN_VQ), true);
  assert.deepEqual([common(VIRTIO_PCI_COMMON_ADM_Q_IDX), common(VIRTIO_PCI_COMMON_ADM_Q_NUM)], [0, 0], 'not negotiated yet');
  await virtio.negotiate(ADMIN);
  assert.deepEqual([common(VIRTIO_PCI_COMMON_ADM_Q_IDX), common(VIRTIO_PCI_COMMON_ADM_Q_NUM)], [1, 1], 'index num_queues (1), one queue');
});

test('admin: a driver that does not ask for ADMIN_VQ does not get it, and cannot set the queue up', async (t) => {
  const o = ownerMachine();
  const virtio = await VirtioDriver.open(o.machine.bus, o.bdf);
  t.after(() => virtio.close());
  assert.equal(hasFeature(await virtio.negotiate(0n), VIRTIO_F_ADMIN_VQ), false);
  await assert.rejects(AdminQueue.setup(virtio), UsageError);
  await assert.rejects(virtio.setupQueue(1), (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_QUEUE');
});

for (const interrupts of ['intx', 'msix'] as const) {
  test(`admin (${interrupts}): LIST_QUERY, LIST_USE, then the legacy interface commands reach VF registers`, async (t) => {
    const o = ownerMachine(2, { msixVectors: 3 });
    const admin = await openAdmin(o, { interrupts });
    t.after(() => admin.close());
    assert.equal(admin.index, 1);
    assert.deepEqual(await admin.listQuery(VIRTIO_ADMIN_GROUP_TYPE_SELF), [0, 1]);
    const sriov = await admin.listQuery(VIRTIO_ADMIN_GROUP_TYPE_SRIOV);
    assert.deepEqual(sriov, [0, 1, 2, 3, 4, 5], 'the four legacy access commands, no LEGACY_NOTIFY_INFO');
    await admin.listUse(VIRTIO_ADMIN_GROUP_TYPE_SRIOV, sriov);

    const [vf1, vf2] = o.members;
    await admin.legacyCommonCfgWrite(2n, VIRTIO_PCI_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    assert.equal(vf2!.fn.core.status, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER, 'VF 2 status written');
    assert.equal(vf1!.fn.core.status, 0, 'VF 1 untouched');
    const hostFeatures = await admin.legacyCommonCfgRead(2n, VIRTIO_PCI_HOST_FEATURES, 4);
    assert.equal(hostFeatures, vf2!.fn.legacy!.read(VIRTIO_PCI_HOST_FEATURES, 4), 'as BAR0 reads it');
    assert.equal(hostFeatures & (1 << 5), 1 << 5, 'the member device bit 5');
    assert.equal(await admin.legacyCommonCfgRead(1n, VIRTIO_PCI_QUEUE_NUM, 2), 16);
    await admin.legacyCommonCfgWrite(2n, VIRTIO_PCI_GUEST_FEATURES, 4, 1 << 5);
    assert.equal(vf2!.fn.core.driverFeatures, 1n << 5n);
    assert.equal(await admin.legacyDevCfgRead(1n, 4, 4), 0x17161514, 'little-endian device config bytes 4..7');
    await admin.legacyDevCfgWrite(1n, 2, 2, 0xbeef);
    assert.deepEqual([...vf1!.device.config.subarray(2, 4)], [0xef, 0xbe]);
    assert.equal(await admin.legacyDevCfgRead(1n, 2, 1), 0xef);
    assert.equal(o.admin.commandsAnswered, 10);
  });
}

test('admin: failures come back as typed errors with the spec status and qualifier', async (t) => {
  const o = ownerMachine(2);
  const admin = await openAdmin(o);
  t.after(() => admin.close());
  // The driver's own rule first: nothing but the list commands before LIST_USE.
  await assert.rejects(admin.legacyCommonCfgRead(1n, VIRTIO_PCI_STATUS, 1), UsageError);
  await assert.rejects(admin.listUse(VIRTIO_ADMIN_GROUP_TYPE_SRIOV, [2]), UsageError, 'LIST_USE before LIST_QUERY');
  // Sent anyway, the device refuses it: not in use.
  const raw = await admin.send({
    opcode: VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ,
    groupType: 1,
    groupMemberId: 1n,
    data: Uint8Array.of(18),
    resultLength: 1,
  });
  assert.deepEqual(
    [raw.status, raw.statusQualifier, raw.usedLength],
    [VIRTIO_ADMIN_STATUS_EINVAL, VIRTIO_ADMIN_STATUS_Q_INVALID_OPCODE, 8],
  );
  await admin.listUse(VIRTIO_ADMIN_GROUP_TYPE_SRIOV, await admin.listQuery(VIRTIO_ADMIN_GROUP_TYPE_SRIOV));
  await assert.rejects(
    admin.legacyCommonCfgRead(3n, VIRTIO_PCI_STATUS, 1),
    expectStatus(VIRTIO_ADMIN_STATUS_EINVAL, VIRTIO_ADMIN_STATUS_Q_INVALID_MEMBER),
  );
  await assert.rejects(
    admin.legacyCommonCfgRead(1n, 2, 4),
    expectStatus(VIRTIO_ADMIN_STATUS_EINVAL, VIRTIO_ADMIN_STATUS_Q_INVALID_FIELD),
    'two fields',
  );
  await assert.rejects(
    admin.legacyDevCfgRead(1n, 6, 4),
    expectStatus(VIRTIO_ADMIN_STATUS_EINVAL, VIRTIO_ADMIN_STATUS_Q_INVALID_FIELD),
    'past the config',
  );
  await assert.rejects(
    admin.legacyDevCfgWrite(1n, 1, 2, 0),
    expectStatus(VIRTIO_ADMIN_STATUS_EINVAL, VIRTIO_ADMIN_STATUS_Q_INVALID_FIELD),
    'misaligned',
  );
  assert.deepEqual([...o.members[0]!.device.config], [0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17], 'refused writes wrote nothing');
});

test('admin: an owner without an SR-IOV group refuses that group type (no SR-IOV capability, 2.12.1.5)', async (t) => {
  const o = ownerMachine(0);
  const admin = await openAdmin(o);
  t.after(() => admin.close());
  await assert.rejects(admin.listQuery(VIRTIO_ADMIN_GROUP_TYPE_SRIOV), expectStatus(VIRTIO_ADMIN_STATUS_EINVAL, 4));
  await assert.rejects(admin.listQuery(7), expectStatus(VIRTIO_ADMIN_STATUS_EINVAL, 4));
});

test('admin: a device reset puts every group back to LIST_QUERY and LIST_USE alone', async (t) => {
  const o = ownerMachine(1);
  const first = await openAdmin(o);
  await first.listUse(VIRTIO_ADMIN_GROUP_TYPE_SRIOV, await first.listQuery(VIRTIO_ADMIN_GROUP_TYPE_SRIOV));
  assert.equal(await first.legacyCommonCfgRead(1n, VIRTIO_PCI_STATUS, 1), 0);
  await first.close();
  const again = await openAdmin(o);
  t.after(() => again.close());
  const raw = await again.send({
    opcode: VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ,
    groupType: 1,
    groupMemberId: 1n,
    data: Uint8Array.of(18),
    resultLength: 1,
  });
  assert.deepEqual([raw.status, raw.statusQualifier], [VIRTIO_ADMIN_STATUS_EINVAL, VIRTIO_ADMIN_STATUS_Q_INVALID_OPCODE]);
});
