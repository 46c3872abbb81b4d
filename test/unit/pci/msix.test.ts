import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArrayGuestMemory } from '../../../src/memory/guest-memory.js';
import {
  PCI_COMMAND,
  PCI_COMMAND_IO,
  PCI_COMMAND_MEMORY,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
} from '../../../src/spec/pci.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
} from '../../../src/spec/status.js';
import {
  VIRTIO_PCI_COMMON_MSIX,
  VIRTIO_PCI_COMMON_Q_MSIX,
  VIRTIO_PCI_COMMON_Q_SELECT,
  VIRTIO_PCI_COMMON_STATUS,
} from '../../../src/spec/virtio-pci.js';
import { VirtioPciFunction } from '../../../src/transport/pci/virtio-pci-function.js';
import { LoopbackDevice } from '../../helpers/loopback-device.js';

/** MSI-X table entry fields and PBA position (PCI Local Bus 3.0 6.8.2.6-7; QEMU puts the PBA at BAR1 + 0x800). */
const ENTRY = 16;
const ADDR_LO = 0;
const ADDR_HI = 4;
const DATA = 8;
const CTRL = 12;
const PBA = 0x800;
const DEVICE_CFG = 0x2000;

function liveFunction(vectors: number) {
  const msi: [number, number][] = [];
  const intx: boolean[] = [];
  const fn = new VirtioPciFunction(
    new LoopbackDevice({ deviceType: 4, queueMaxSizes: [16, 16] }),
    {
      memory: new ArrayGuestMemory(1 << 20),
      sendMsi: (address, data) => msi.push([address, data]),
      setIntx: (level) => intx.push(level),
    },
    { msixVectors: vectors },
  );
  fn.configWrite(PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
  const core = fn.core;
  core.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  core.setDriverFeatureWord(1, 1); // VERSION_1
  core.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
  core.writeStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
  const cap = fn.msix?.capability.offset ?? 0;
  return {
    fn,
    msi,
    intx,
    control: (value: number) => fn.configWrite(cap + PCI_MSIX_FLAGS, 2, value),
    table: (vector: number, field: number, value?: number) =>
      value === undefined ? fn.barRead(1, vector * ENTRY + field, 4) : fn.barWrite(1, vector * ENTRY + field, 4, value),
    pba: () => fn.barRead(1, PBA, 4),
    /** A configuration change: the core raises the config vector. */
    configChange: () => fn.barWrite(4, DEVICE_CFG + 4, 4, 1),
    common: (offset: number, size: 2, value?: number) =>
      value === undefined ? fn.barRead(4, offset, size) : fn.barWrite(4, offset, size, value),
  };
}

test('MSI-X entries start masked: an event sets the pending bit, unmasking the vector delivers it and clears the bit', () => {
  const f = liveFunction(3);
  for (let v = 0; v < 3; v++) assert.equal(f.table(v, CTRL), 1, `entry ${v} masked at reset`);
  f.table(2, ADDR_LO, 0xfee0_1000);
  f.table(2, ADDR_HI, 0);
  f.table(2, DATA, 0x4242);
  f.control(PCI_MSIX_FLAGS_ENABLE);
  f.common(VIRTIO_PCI_COMMON_MSIX, 2, 2);
  f.configChange();
  assert.deepEqual(f.msi, [], 'masked: nothing sent');
  assert.equal(f.pba(), 1 << 2, 'pending bit 2');
  f.table(2, CTRL, 0);
  assert.deepEqual(f.msi, [[0xfee0_1000, 0x4242]], 'delivered on unmask');
  assert.equal(f.pba(), 0);
  f.configChange();
  assert.deepEqual(f.msi.length, 2, 'unmasked: sent at once');
  // The PBA is read-only.
  f.fn.barWrite(1, PBA, 4, 0xffff_ffff);
  assert.equal(f.pba(), 0);
  // ISR is still set, as QEMU does; INTx stays silent.
  assert.equal(f.fn.notifications.peekIsr() & 2, 2);
  assert.deepEqual(f.intx, []);
});

test('MSI-X function mask (MASKALL) holds every vector pending until it is cleared', () => {
  const f = liveFunction(2);
  f.table(1, ADDR_LO, 0xfee0_0000);
  f.table(1, DATA, 7);
  f.table(1, CTRL, 0);
  f.control(PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
  f.common(VIRTIO_PCI_COMMON_MSIX, 2, 1);
  f.configChange();
  f.configChange();
  assert.deepEqual(f.msi, []);
  assert.equal(f.pba(), 0b10);
  f.control(PCI_MSIX_FLAGS_ENABLE);
  assert.deepEqual(f.msi, [[0xfee0_0000, 7]], 'one message for the pending bit');
  assert.equal(f.pba(), 0);
});

test('MSI-X disabled: events raise INTx; enabling MSI-X takes the function off INTx', () => {
  const f = liveFunction(2);
  f.common(VIRTIO_PCI_COMMON_MSIX, 2, 0);
  f.configChange();
  assert.deepEqual(f.intx, [true]);
  assert.deepEqual(f.msi, []);
  assert.equal(f.pba(), 0, 'no pending bits while MSI-X is disabled');
  f.control(PCI_MSIX_FLAGS_ENABLE);
  assert.deepEqual(f.intx, [true, false]);
  f.table(0, CTRL, 0);
  f.configChange();
  assert.equal(f.msi.length, 1);
  assert.deepEqual(f.intx, [true, false]);
});

test('NO_VECTOR (0xffff) reads back for a vector beyond the table, and without MSI-X for any vector', () => {
  const f = liveFunction(3);
  f.common(VIRTIO_PCI_COMMON_MSIX, 2, 2);
  assert.equal(f.common(VIRTIO_PCI_COMMON_MSIX, 2), 2);
  f.common(VIRTIO_PCI_COMMON_MSIX, 2, 3);
  assert.equal(f.common(VIRTIO_PCI_COMMON_MSIX, 2), 0xffff);
  f.common(VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
  f.common(VIRTIO_PCI_COMMON_Q_MSIX, 2, 1);
  assert.equal(f.common(VIRTIO_PCI_COMMON_Q_MSIX, 2), 1);
  f.common(VIRTIO_PCI_COMMON_Q_MSIX, 2, 0x800);
  assert.equal(f.common(VIRTIO_PCI_COMMON_Q_MSIX, 2), 0xffff);
  const none = liveFunction(0);
  none.common(VIRTIO_PCI_COMMON_MSIX, 2, 0);
  assert.equal(none.common(VIRTIO_PCI_COMMON_MSIX, 2), 0xffff);
  assert.equal(none.fn.bars[1], undefined, 'no MSI-X BAR');
});

test('vectors are unmapped by a device reset; the table itself stays as programmed', () => {
  const f = liveFunction(3);
  f.table(1, DATA, 0x55);
  f.common(VIRTIO_PCI_COMMON_MSIX, 2, 1);
  f.common(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
  f.common(VIRTIO_PCI_COMMON_Q_MSIX, 2, 2);
  f.common(VIRTIO_PCI_COMMON_STATUS, 2, 0);
  assert.equal(f.common(VIRTIO_PCI_COMMON_MSIX, 2), 0xffff);
  assert.equal(f.common(VIRTIO_PCI_COMMON_Q_MSIX, 2), 0xffff);
  assert.equal(f.table(1, DATA), 0x55);
});
