/**
 * VIRTIO_ADMIN_CMD_LEGACY_NOTIFY_INFO, both halves end to end on the in-process machine: the owner's
 * notify area in BAR4, a legacy member's queue notified through the address serving a request, the
 * hostile commands the device answers and the hostile results the driver refuses or ignores.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdminVirtqueue } from '../../../src/device/admin/admin-virtqueue.js';
import { LegacyNotifyArea } from '../../../src/device/admin/legacy-notify-area.js';
import { SriovGroup } from '../../../src/device/admin/sriov-group.js';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import { AdminQueue } from '../../../src/driver/admin/admin-queue.js';
import { parseLegacyNotifyInfo } from '../../../src/driver/admin/legacy-notify-info.js';
import { VirtioDriver } from '../../../src/driver/virtio-driver.js';
import { AdminCommandError, UsageError } from '../../../src/errors.js';
import { ArrayGuestMemory } from '../../../src/memory/guest-memory.js';
import { Machine } from '../../../src/platform/machine.js';
import type { PciBar } from '../../../src/bus/bars.js';
import {
  VIRTIO_ADMIN_CMD_LEGACY_NOTIFY_INFO,
  VIRTIO_ADMIN_GROUP_TYPE_SELF,
  VIRTIO_ADMIN_GROUP_TYPE_SRIOV,
  VIRTIO_ADMIN_STATUS_EINVAL,
  VIRTIO_ADMIN_STATUS_OK,
  VIRTIO_ADMIN_STATUS_Q_INVALID_GROUP,
  VIRTIO_ADMIN_STATUS_Q_INVALID_MEMBER,
  VIRTIO_ADMIN_STATUS_Q_INVALID_OPCODE,
} from '../../../src/spec/admin.js';
import { featureSet, VIRTIO_F_ADMIN_VQ } from '../../../src/spec/features.js';
import { VIRTIO_CONFIG_S_ACKNOWLEDGE, VIRTIO_CONFIG_S_DRIVER, VIRTIO_CONFIG_S_DRIVER_OK } from '../../../src/spec/status.js';
import { VIRTIO_PCI_QUEUE_NUM, VIRTIO_PCI_QUEUE_PFN, VIRTIO_PCI_QUEUE_SEL, VIRTIO_PCI_STATUS } from '../../../src/spec/virtio-pci.js';
import { MODERN_BAR } from '../../../src/transport/pci/modern-device.js';
import { LEGACY_NOTIFY_AREA_OFFSET, VirtioPciFunction } from '../../../src/transport/pci/virtio-pci-function.js';

const PAGE = 4096;

/** An owner with two legacy virtio-rng members (in their own memory) and, unless `area` is false, a notify area. */
function notifyOwner(area = true) {
  const memory = new ArrayGuestMemory(1 << 16);
  const host = { memory, sendMsi() {}, setIntx() {} };
  const members = [0, 1].map(() => new VirtioPciFunction(new RngDevice({ queueSize: 8 }), host, { mode: 'legacy' }));
  const legacy = members.map((m) => m.legacy!);
  const notifyArea = area ? new LegacyNotifyArea(legacy) : undefined;
  const admin = new AdminVirtqueue({ groups: [new SriovGroup(legacy, notifyArea)] });
  const machine = new Machine({ ramSize: 4 << 20 });
  const { bdf, fn } = machine.plugVirtio(new RngDevice(), { adminQueue: admin, ...(notifyArea ? { legacyNotifyArea: notifyArea } : {}) });
  return { machine, bdf, owner: fn, members, memory };
}

async function openAdmin(o: { machine: Machine; bdf: ReturnType<typeof notifyOwner>['bdf'] }): Promise<AdminQueue> {
  const virtio = await VirtioDriver.open(o.machine.bus, o.bdf);
  await virtio.negotiate(featureSet(VIRTIO_F_ADMIN_VQ));
  const admin = await AdminQueue.setup(virtio);
  await virtio.driverOk();
  await admin.listUse(VIRTIO_ADMIN_GROUP_TYPE_SRIOV, await admin.listQuery(VIRTIO_ADMIN_GROUP_TYPE_SRIOV));
  return admin;
}

/** Set up member `vf`'s queue 0 (legacy split ring at page 4) through the admin commands, with one 16-byte buffer at 0x8000. */
async function legacyQueue(admin: AdminQueue, memory: ArrayGuestMemory, vf: bigint): Promise<() => number> {
  await admin.legacyCommonCfgWrite(vf, VIRTIO_PCI_STATUS, 1, 0);
  await admin.legacyCommonCfgWrite(vf, VIRTIO_PCI_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  await admin.legacyCommonCfgWrite(vf, VIRTIO_PCI_QUEUE_SEL, 2, 0);
  const size = await admin.legacyCommonCfgRead(vf, VIRTIO_PCI_QUEUE_NUM, 2);
  const ring = 4 * PAGE;
  const avail = ring + 16 * size;
  const used = Math.ceil((avail + 6 + 2 * size) / PAGE) * PAGE;
  memory.write64(ring, 0x8000n);
  memory.write32(ring + 8, 16);
  memory.write16(ring + 12, 2); // VRING_DESC_F_WRITE
  memory.write16(avail + 4, 0); // ring[0] = descriptor 0
  memory.write16(avail + 2, 1); // idx
  await admin.legacyCommonCfgWrite(vf, VIRTIO_PCI_QUEUE_PFN, 4, ring / PAGE);
  await admin.legacyCommonCfgWrite(
    vf,
    VIRTIO_PCI_STATUS,
    1,
    VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK,
  );
  return () => memory.read16(used + 2);
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

test('notify-info: LIST_QUERY reports opcode 6 only with an area; each VF gets its le16 address in BAR4', async (t) => {
  const without = notifyOwner(false);
  const plain = await openAdmin(without);
  t.after(() => plain.close());
  assert.equal((await plain.listQuery(VIRTIO_ADMIN_GROUP_TYPE_SRIOV)).includes(VIRTIO_ADMIN_CMD_LEGACY_NOTIFY_INFO), false);
  assert.equal(without.owner.bars[MODERN_BAR]!.size, 0x4000, 'BAR4 unchanged without an area');

  const o = notifyOwner();
  const admin = await openAdmin(o);
  t.after(() => admin.close());
  assert.ok((await admin.listQuery(VIRTIO_ADMIN_GROUP_TYPE_SRIOV)).includes(VIRTIO_ADMIN_CMD_LEGACY_NOTIFY_INFO));
  assert.equal(o.owner.bars[MODERN_BAR]!.size, 0x8000, 'BAR4 grows to hold the area');
  const one = await admin.legacyNotifyInfo(1n);
  const two = await admin.legacyNotifyInfo(2n);
  assert.deepEqual(one, { addresses: [{ bar: MODERN_BAR, offset: LEGACY_NOTIFY_AREA_OFFSET }], ignored: [] });
  assert.deepEqual(two.addresses, [{ bar: MODERN_BAR, offset: LEGACY_NOTIFY_AREA_OFFSET + 2 }]);
  // The raw result: one owner entry, then zeroes (flags 0 ends the list), 64 bytes.
  const raw = await admin.command({ opcode: 6, groupType: VIRTIO_ADMIN_GROUP_TYPE_SRIOV, groupMemberId: 2n, resultLength: 64 });
  assert.equal(raw.usedLength, 8 + 64);
  assert.deepEqual([...raw.result.subarray(0, 16)], [1, 4, 0, 0, 0, 0, 0, 0, 0x02, 0x40, 0, 0, 0, 0, 0, 0]);
  assert.ok(raw.result.subarray(16).every((b) => b === 0));
});

test('notify-info: a legacy member queue notified through the address serves a request (VF 2 only)', async (t) => {
  const o = notifyOwner();
  const admin = await openAdmin(o);
  t.after(() => admin.close());
  const usedIdx = await legacyQueue(admin, o.memory, 2n);
  const { addresses } = await admin.legacyNotifyInfo(2n);
  await settle();
  assert.equal(usedIdx(), 0, 'nothing served before the notification');
  // VF 1's address does not notify VF 2.
  await admin.legacyNotify((await admin.legacyNotifyInfo(1n)).addresses[0]!, 0);
  await settle();
  assert.equal(usedIdx(), 0, "VF 1's address leaves VF 2 alone");
  await admin.legacyNotify(addresses[0]!, 0);
  await settle();
  assert.equal(usedIdx(), 1, 'the request was served');
  const buf = new Uint8Array(16);
  o.memory.read(0x8000, buf);
  assert.ok(
    buf.some((b) => b !== 0),
    'random bytes written into the buffer',
  );
});

test('notify-info: writes of the wrong width or alignment to the address notify nothing', async (t) => {
  const o = notifyOwner();
  const admin = await openAdmin(o);
  t.after(() => admin.close());
  const usedIdx = await legacyQueue(admin, o.memory, 1n);
  for (const [offset, size] of [
    [0, 1],
    [0, 4],
    [1, 2],
    [1, 1],
  ] as const)
    o.owner.barWrite(MODERN_BAR, LEGACY_NOTIFY_AREA_OFFSET + offset, size, 0);
  o.owner.barWrite(MODERN_BAR, LEGACY_NOTIFY_AREA_OFFSET + 0x10, 2, 0); // no member 9: nothing
  await settle();
  assert.equal(usedIdx(), 0);
  assert.equal(o.owner.barRead(MODERN_BAR, LEGACY_NOTIFY_AREA_OFFSET, 2), 0, 'reads 0');
  o.owner.barWrite(MODERN_BAR, LEGACY_NOTIFY_AREA_OFFSET, 2, 0);
  await settle();
  assert.equal(usedIdx(), 1, 'the 16-bit write notifies');
});

test('notify-info: hostile commands get the spec statuses, data is ignored and a short buffer cuts the result', async (t) => {
  const o = notifyOwner();
  const admin = await openAdmin(o);
  t.after(() => admin.close());
  const send = (groupType: number, groupMemberId: bigint, extra: { data?: Uint8Array; resultLength?: number } = {}) =>
    admin.send({ opcode: VIRTIO_ADMIN_CMD_LEGACY_NOTIFY_INFO, groupType, groupMemberId, resultLength: 64, ...extra });
  const status = (a: { status: number; statusQualifier: number }) => [a.status, a.statusQualifier];
  assert.deepEqual(status(await send(VIRTIO_ADMIN_GROUP_TYPE_SRIOV, 0n)), [
    VIRTIO_ADMIN_STATUS_EINVAL,
    VIRTIO_ADMIN_STATUS_Q_INVALID_MEMBER,
  ]);
  assert.deepEqual(status(await send(VIRTIO_ADMIN_GROUP_TYPE_SRIOV, 3n)), [
    VIRTIO_ADMIN_STATUS_EINVAL,
    VIRTIO_ADMIN_STATUS_Q_INVALID_MEMBER,
  ]);
  assert.deepEqual(status(await send(VIRTIO_ADMIN_GROUP_TYPE_SELF, 0n)), [
    VIRTIO_ADMIN_STATUS_EINVAL,
    VIRTIO_ADMIN_STATUS_Q_INVALID_OPCODE,
  ]);
  assert.deepEqual(status(await send(7, 1n)), [VIRTIO_ADMIN_STATUS_EINVAL, VIRTIO_ADMIN_STATUS_Q_INVALID_GROUP]);
  // Command-specific data is not used: ignored, the same answer.
  const withData = await send(VIRTIO_ADMIN_GROUP_TYPE_SRIOV, 1n, { data: new Uint8Array(16).fill(0xff) });
  assert.equal(withData.status, VIRTIO_ADMIN_STATUS_OK);
  assert.equal(withData.result[0], 1);
  // A result buffer too small: cut at the driver's buffer (2.13.1), used length says so.
  const short = await send(VIRTIO_ADMIN_GROUP_TYPE_SRIOV, 1n, { resultLength: 4 });
  assert.deepEqual([short.status, short.usedLength, ...short.result], [VIRTIO_ADMIN_STATUS_OK, 12, 1, 4, 0, 0]);
});

test('notify-info: the driver validates every entry and ignores or refuses hostile results', () => {
  const bars: PciBar[] = [
    { index: 1, kind: 'memory', size: 0x1000, is64: false, prefetchable: false, base: 0xfe000000 },
    { index: 4, kind: 'memory', size: 0x8000, is64: true, prefetchable: true, base: 0xfd000000 },
  ];
  const result = (...entries: [number, number, bigint][]) => {
    const out = new Uint8Array(64);
    const view = new DataView(out.buffer);
    entries.forEach(([flags, bar, offset], i) => {
      out[i * 16] = flags;
      out[i * 16 + 1] = bar;
      view.setBigUint64(i * 16 + 8, offset, true);
    });
    return out;
  };
  const refused = (r: Uint8Array, pattern: RegExp) =>
    assert.throws(
      () => parseLegacyNotifyInfo(r, bars, 1n),
      (e: unknown) => e instanceof AdminCommandError && e.code === 'ERR_ADMIN_RESULT' && pattern.test(e.message),
    );
  refused(result([1, 4, 0x4000n], [1, 4, 0x4002n], [1, 4, 0x4004n], [1, 4, 0x4006n]), /no end-of-list/);
  refused(result([1, 3, 0x10n]), /BAR 3 is not implemented/);
  refused(result([1, 0, 0x10n]), /BAR 0 is not implemented/);
  refused(result([1, 4, 0x4001n]), /not 2-byte aligned/);
  refused(result([1, 4, 0x8000n]), /outside BAR 4/);
  refused(result([1, 4, 0x7fffn]), /not 2-byte aligned/);
  refused(result([1, 4, 0xfffffffffffffffen]), /outside BAR 4/);
  refused(result([2, 4, 0x10n]), /member device/);
  refused(result([9, 4, 0x10n]), /reserved flags 9/);
  refused(result(), /no usable address/);
  // Bad entries are ignored, good ones kept; entries after the terminator are never read.
  const mixed = parseLegacyNotifyInfo(result([1, 4, 0x4001n], [1, 1, 0xffen], [0, 0, 0n], [9, 9, 1n]), bars, 1n);
  assert.deepEqual(mixed.addresses, [{ bar: 1, offset: 0xffe }]);
  assert.deepEqual(
    mixed.ignored.map((e) => e.index),
    [0],
  );
});

test('notify-info: legacyNotify checks the address against the BAR before the access', async (t) => {
  const o = notifyOwner();
  const admin = await openAdmin(o);
  t.after(() => admin.close());
  await assert.rejects(admin.legacyNotify({ bar: MODERN_BAR, offset: 0x8000 }, 0), UsageError);
  await assert.rejects(admin.legacyNotify({ bar: 3, offset: 0 }, 0), UsageError);
  await assert.rejects(admin.legacyNotify({ bar: MODERN_BAR, offset: 0x4001 }, 0), UsageError);
  await assert.rejects(admin.legacyNotify({ bar: MODERN_BAR, offset: 0x4000 }, 0x10000), UsageError);
  await assert.rejects(admin.legacyNotify({ bar: MODERN_BAR, offset: 0.5 }, 0), UsageError);
});
