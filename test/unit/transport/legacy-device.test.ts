import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ArrayGuestMemory } from '../../../src/memory/guest-memory.js';
import {
  PCI_CAP_ID_MSIX,
  PCI_CAP_ID_VNDR,
  PCI_COMMAND,
  PCI_COMMAND_IO,
  PCI_COMMAND_MEMORY,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_STATUS,
  PCI_STATUS_INTERRUPT,
} from '../../../src/spec/pci.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
} from '../../../src/spec/status.js';
import { legacyBarDescriptor } from '../../../src/transport/pci/legacy-device.js';
import { VirtioPciFunction, type VirtioPciMode } from '../../../src/transport/pci/virtio-pci-function.js';
import { BlkDevice } from '../../../src/device/blk/blk-device.js';
import { MemoryBlockBackend } from '../../../src/device/blk/memory-backend.js';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import { VirtioConsoleDevice } from '../../../src/device/console/console-device.js';
import { VirtioNetDevice } from '../../../src/device/net/net-device.js';
import { createMemoryNetPair } from '../../../src/device/net/memory-pair.js';
import type { VirtioDevice } from '../../../src/core/virtio-device.js';
import { LOOPBACK_MAGIC, LoopbackDevice } from '../../helpers/loopback-device.js';
import { UsageError } from '../../../src/errors.js';
import * as spec from '../../../src/spec/virtio-pci.js';

/** The legacy header as spec 4.1.4.10 lays it out (offsets written out here, not imported, to check the constants). */
const HEADER = {
  hostFeatures: 0,
  guestFeatures: 4,
  queuePfn: 8,
  queueNum: 12,
  queueSel: 14,
  queueNotify: 16,
  status: 18,
  isr: 19,
  configVector: 20,
  queueVector: 22,
};

function legacyFunction(options: { mode?: VirtioPciMode; msixVectors?: number; device?: VirtioDevice } = {}) {
  const intx: boolean[] = [];
  const msi: [number, number][] = [];
  const fn = new VirtioPciFunction(
    options.device ?? new LoopbackDevice({ deviceType: 4, queueMaxSizes: [64, 16], deviceFeatures: 0xf0n | (1n << 40n) }),
    {
      memory: new ArrayGuestMemory(1 << 20),
      sendMsi: (address, data) => msi.push([address, data]),
      setIntx: (level) => intx.push(level),
    },
    { mode: options.mode ?? 'legacy', msixVectors: options.msixVectors ?? 0 },
  );
  fn.configWrite(PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
  const io = {
    r: (offset: number, size: 1 | 2 | 4) => fn.barRead(0, offset, size),
    w: (offset: number, size: 1 | 2 | 4, value: number) => fn.barWrite(0, offset, size, value),
  };
  return { fn, io, intx, msi };
}

function enableMsix(fn: VirtioPciFunction): void {
  const cap = fn.msix!.capability.offset;
  fn.configWrite(cap + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE);
}

test("the spec constants are the legacy header's offsets (4.1.4.10)", () => {
  assert.deepEqual(
    [
      spec.VIRTIO_PCI_HOST_FEATURES,
      spec.VIRTIO_PCI_GUEST_FEATURES,
      spec.VIRTIO_PCI_QUEUE_PFN,
      spec.VIRTIO_PCI_QUEUE_NUM,
      spec.VIRTIO_PCI_QUEUE_SEL,
      spec.VIRTIO_PCI_QUEUE_NOTIFY,
      spec.VIRTIO_PCI_STATUS,
      spec.VIRTIO_PCI_ISR,
      spec.VIRTIO_MSI_CONFIG_VECTOR,
      spec.VIRTIO_MSI_QUEUE_VECTOR,
    ],
    Object.values(HEADER),
  );
  assert.equal(spec.VIRTIO_PCI_CONFIG_OFF_NO_MSIX, 20);
  assert.equal(spec.VIRTIO_PCI_CONFIG_OFF_MSIX, 24);
});

test('legacy header without MSI-X: every register at the spec offset; device config from 20', () => {
  const { fn, io } = legacyFunction();
  const core = fn.core;
  // Host features: the low 32 bits of the offer only (bit 40 and VERSION_1 cannot be seen).
  assert.equal(io.r(HEADER.hostFeatures, 4), Number(core.offeredFeatures & 0xffff_ffffn));
  assert.equal(io.r(HEADER.hostFeatures, 4) & 0xf0, 0xf0);
  io.w(HEADER.status, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE);
  io.w(HEADER.status, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  assert.equal(io.r(HEADER.status, 1), VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  // Guest features: only bits offered are kept.
  io.w(HEADER.guestFeatures, 4, 0x0000_0f30);
  assert.equal(io.r(HEADER.guestFeatures, 4), 0x30);
  // Queue size is the maximum and read-only; select picks the queue.
  assert.equal(io.r(HEADER.queueNum, 2), 64);
  io.w(HEADER.queueNum, 2, 8);
  assert.equal(io.r(HEADER.queueNum, 2), 64);
  io.w(HEADER.queueSel, 2, 1);
  assert.equal(io.r(HEADER.queueSel, 2), 1);
  assert.equal(io.r(HEADER.queueNum, 2), 16);
  io.w(HEADER.queueSel, 2, 2);
  assert.equal(io.r(HEADER.queueNum, 2), 0, 'a queue that does not exist has size 0');
  // Device config at 20 (the loopback's magic), no vector registers.
  assert.equal(io.r(20, 4), LOOPBACK_MAGIC);
  assert.equal(io.r(24, 4), 0, 'scratch');
  assert.equal(io.r(28, 4), 0xffff_ffff, 'beyond the device config');
  // BAR0 is I/O, a power of two covering the header (20, or 24 with MSI-X) and the config, as QEMU.
  assert.deepEqual(fn.bars[0], { kind: 'io', size: 32, is64: false, prefetchable: false });
  assert.equal(legacyBarDescriptor(12, false).size, 32);
  assert.equal(legacyBarDescriptor(12, true).size, 64);
  assert.equal(legacyBarDescriptor(60, true).size, 128, 'virtio-blk, as QEMU 7.2');
});

test('legacy: a PFN outside guest memory is a guest fault at DRIVER_OK: DEVICE_NEEDS_RESET, no throw; reset recovers', () => {
  const { fn, io } = legacyFunction();
  io.w(HEADER.status, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  io.w(HEADER.queuePfn, 4, 0xffff_ffff);
  io.w(HEADER.status, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK);
  assert.equal(io.r(HEADER.status, 1) & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET);
  assert.match(String(fn.core.fault), /ring|memory|address/i);
  io.w(HEADER.queueNotify, 2, 0);
  io.w(HEADER.status, 1, 0);
  assert.equal(io.r(HEADER.status, 1), 0);
});

test('legacy header with MSI-X enabled: vectors at 20 and 22, device config moves to 24', () => {
  const { fn, io } = legacyFunction({ msixVectors: 3 });
  assert.equal(io.r(20, 4), LOOPBACK_MAGIC, 'MSI-X present but not enabled: config still at 20');
  enableMsix(fn);
  assert.equal(io.r(24, 4), LOOPBACK_MAGIC);
  assert.equal(io.r(HEADER.configVector, 2), 0xffff);
  io.w(HEADER.configVector, 2, 2);
  assert.equal(io.r(HEADER.configVector, 2), 2);
  io.w(HEADER.queueSel, 2, 1);
  io.w(HEADER.queueVector, 2, 1);
  assert.equal(io.r(HEADER.queueVector, 2), 1);
  assert.equal(fn.notifications.queueVector(1), 1);
  // A vector beyond the 3-entry table cannot be mapped: NO_VECTOR reads back.
  io.w(HEADER.queueVector, 2, 3);
  assert.equal(io.r(HEADER.queueVector, 2), 0xffff);
  io.w(HEADER.configVector, 2, 7);
  assert.equal(io.r(HEADER.configVector, 2), 0xffff);
});

test('an ISR bit set while MSI-X was enabled shows in PCI status Interrupt Status (and INTx) once MSI-X is disabled (4.1.4.5.1)', () => {
  const { fn, io, intx } = legacyFunction({ msixVectors: 3 });
  io.w(HEADER.status, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK);
  enableMsix(fn);
  io.w(24 + 4, 4, 0x1234); // the loopback's scratch: a configuration change, ISR bit 1, config vector NO_VECTOR
  assert.equal(fn.notifications.peekIsr(), spec.VIRTIO_PCI_ISR_CONFIG);
  assert.equal(fn.configRead(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, 0, 'MSI-X enabled: INTx is not used');
  assert.notEqual(intx.at(-1), true);
  fn.configWrite(fn.msix!.capability.offset + PCI_MSIX_FLAGS, 2, 0);
  assert.equal(fn.configRead(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, PCI_STATUS_INTERRUPT, 'the OR of the ISR bits');
  assert.equal(intx.at(-1), true);
  assert.equal(io.r(HEADER.isr, 1), spec.VIRTIO_PCI_ISR_CONFIG);
  assert.equal(fn.configRead(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, 0, 'the ISR read cleared it');
  assert.equal(intx.at(-1), false);
});

test('legacy queue vector of a queue that does not exist reads VIRTIO_MSI_NO_VECTOR (0xffff), as QEMU', () => {
  const { fn, io } = legacyFunction({ msixVectors: 3 });
  enableMsix(fn);
  for (const sel of [2, 0x7fff, 0xffff]) {
    io.w(HEADER.queueSel, 2, sel);
    io.w(HEADER.queueVector, 2, 1);
    assert.equal(io.r(HEADER.queueVector, 2), 0xffff, `queue ${sel}`);
  }
  assert.deepEqual(fn.notifications.queueVectors, [0xffff, 0xffff], 'no existing queue took the vector');
});

test('legacy notify: the whole written value names the queue, so a 4-byte 0x10000 notifies nothing (as QEMU)', () => {
  const { io, fn } = legacyFunction();
  const device = fn.device as LoopbackDevice;
  io.w(HEADER.status, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  io.w(HEADER.queuePfn, 4, 0x12);
  io.w(HEADER.queueSel, 2, 1);
  io.w(HEADER.queuePfn, 4, 0x20);
  io.w(HEADER.status, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK);
  for (const value of [0x10000, 0x10001, 0xffff_0000, 0x8000_0001]) io.w(HEADER.queueNotify, 4, value);
  assert.deepEqual(device.notifies, []);
  io.w(HEADER.queueNotify, 4, 1);
  io.w(HEADER.queueNotify, 2, 0);
  assert.deepEqual(device.notifies, [
    { index: 1, data: undefined },
    { index: 0, data: undefined },
  ]);
});

test('legacy status: no FEATURES_OK step, DRIVER_OK activates the queues given by PFN in the legacy layout', () => {
  const { fn, io } = legacyFunction();
  const device = fn.device as LoopbackDevice;
  io.w(HEADER.status, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE);
  io.w(HEADER.status, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
  assert.equal(io.r(HEADER.status, 1), VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER, 'FEATURES_OK is not a legacy status bit');
  io.w(HEADER.queuePfn, 4, 0x12);
  assert.equal(io.r(HEADER.queuePfn, 4), 0x12);
  const q = fn.core.queues[0]!;
  // 2.7.2 legacy layout for 64 entries: desc 16*64 = 1024, avail 6 + 2*64 = 134, used at align(1158, 4096).
  assert.equal(q.ringAddress('desc'), 0x12000);
  assert.equal(q.ringAddress('driver'), 0x12000 + 1024);
  assert.equal(q.ringAddress('device'), 0x12000 + 4096);
  assert.equal(q.enabled, true);
  // PFN 0 takes the queue back; a new PFN moves it.
  io.w(HEADER.queuePfn, 4, 0);
  assert.equal(q.enabled, false);
  assert.equal(io.r(HEADER.queuePfn, 4), 0);
  io.w(HEADER.queuePfn, 4, 0x20);
  assert.equal(device.activations.length, 0);
  io.w(HEADER.status, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK);
  assert.equal(device.activations.length, 1);
  assert.equal(device.activations[0]!.queues[0]?.size, 64);
  assert.equal(device.activations[0]!.queues[1], null);
  // Notify by queue index; PFN can no longer change while DRIVER_OK.
  io.w(HEADER.queueNotify, 2, 0);
  assert.deepEqual(device.notifies, [{ index: 0, data: undefined }]);
  io.w(HEADER.queuePfn, 4, 0x40);
  assert.equal(io.r(HEADER.queuePfn, 4), 0x20);
  // Reset through status 0.
  io.w(HEADER.status, 1, 0);
  assert.equal(io.r(HEADER.status, 1), 0);
  assert.equal(io.r(HEADER.queuePfn, 4), 0);
});

test('legacy ISR: a read returns and clears it and lowers INTx', () => {
  const { fn, io, intx } = legacyFunction();
  io.w(HEADER.status, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  io.w(HEADER.status, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK);
  io.w(24, 4, 5); // loopback scratch write: a config change
  assert.deepEqual(intx, [true]);
  assert.equal(io.r(HEADER.isr, 1), 2);
  assert.deepEqual(intx, [true, false]);
  assert.equal(io.r(HEADER.isr, 1), 0);
  assert.equal(fn.core.configGeneration, 1);
});

test('three kinds of device: IDs, revision, subsystem, BARs and capabilities (spec 4.1.2 and the transitional ID table)', () => {
  const devices: [string, () => VirtioDevice, number, number][] = [
    ['net', () => new VirtioNetDevice({ backend: createMemoryNetPair()[0] }), 1, 0x1000],
    ['blk', () => new BlkDevice({ backend: new MemoryBlockBackend(4096) }), 2, 0x1001],
    ['console', () => new VirtioConsoleDevice(), 3, 0x1003],
    ['rng', () => new RngDevice(), 4, 0x1005],
  ];
  for (const [name, make, type, transitionalId] of devices) {
    for (const mode of ['modern', 'transitional', 'legacy'] as const) {
      const { fn } = legacyFunction({ mode, device: make() });
      const at = `${name} ${mode}`;
      assert.equal(fn.configRead(0, 2), 0x1af4, at);
      assert.equal(fn.configRead(2, 2), mode === 'modern' ? 0x1040 + type : transitionalId, at);
      assert.equal(fn.configRead(8, 1), mode === 'modern' ? 1 : 0, `${at}: revision`);
      assert.equal(fn.configRead(0x2e, 2), mode === 'modern' ? 0x1100 : type, `${at}: subsystem ID`);
      assert.equal(fn.bars[0]?.kind, mode === 'modern' ? undefined : 'io', `${at}: BAR0`);
      assert.equal(fn.bars[4]?.kind, mode === 'legacy' ? undefined : 'memory', `${at}: BAR4`);
      const vendorCaps = fn.config.capabilities.filter((c) => c.definition.id === PCI_CAP_ID_VNDR).length;
      assert.equal(vendorCaps, mode === 'legacy' ? 0 : 5, `${at}: virtio capabilities`);
    }
  }
  // A type the spec's table has no transitional ID for.
  assert.throws(() => legacyFunction({ mode: 'transitional', device: new LoopbackDevice({ deviceType: 63 }) }), UsageError);
});

test('MSI-X capability heads the list after the virtio capabilities, table in BAR1, PBA at 0x800 (as QEMU)', () => {
  const { fn } = legacyFunction({ mode: 'transitional', msixVectors: 3 });
  const caps = fn.config.capabilities;
  assert.equal(caps.at(-1)!.definition.id, PCI_CAP_ID_MSIX);
  assert.equal(fn.configRead(0x34, 1), caps.at(-1)!.offset);
  const cap = caps.at(-1)!.offset;
  assert.equal(fn.configRead(cap + 2, 2), 2, 'table size 3 - 1, disabled');
  assert.equal(fn.configRead(cap + 4, 4), 1, 'table at BAR1 + 0');
  assert.equal(fn.configRead(cap + 8, 4), 0x801, 'PBA at BAR1 + 0x800');
  assert.deepEqual(fn.bars[1], { kind: 'memory', size: 0x1000, is64: false, prefetchable: false });
  const legacyOnly = legacyFunction({ mode: 'legacy', msixVectors: 2 }).fn;
  assert.equal(legacyOnly.config.capabilities.length, 1);
  assert.equal(legacyOnly.configRead(0x34, 1), 0x40);
});

test('property: random traffic on config space, BAR0, BAR1 and BAR4 of every kind of function never throws; a reset through either interface recovers', () => {
  type Op = { space: 'config' | 0 | 1 | 4; offset: number; size: 1 | 2 | 4; value: number; write: boolean };
  const op: fc.Arbitrary<Op> = fc.record({
    space: fc.constantFrom('config' as const, 0 as const, 1 as const, 4 as const),
    offset: fc.oneof(
      fc.integer({ min: 0, max: 0x30 }),
      fc.integer({ min: 0x800, max: 0x808 }),
      fc.integer({ min: 0x1000, max: 0x1004 }),
      fc.integer({ min: 0x3000, max: 0x3008 }),
      fc.integer({ min: 0, max: 0x4004 }),
    ),
    size: fc.constantFrom(1 as const, 2 as const, 4 as const),
    value: fc.oneof(fc.nat(), fc.constantFrom(0, 1, 3, 7, 0xf, 0xff, 0x8000, 0xc000, 0xffff, 0xffff_ffff)),
    write: fc.boolean(),
  });
  fc.assert(
    fc.property(
      fc.constantFrom('modern' as const, 'transitional' as const, 'legacy' as const),
      fc.constantFrom(0, 1, 3),
      fc.array(op, { maxLength: 150 }),
      (mode, msixVectors, ops) => {
        const { fn, io } = legacyFunction({ mode, msixVectors, device: new LoopbackDevice({ deviceType: 4, queueMaxSizes: [8, 4] }) });
        for (const o of ops) {
          if (o.space === 'config') {
            if (o.write) fn.configWrite(o.offset & 0xff, o.size, o.value);
            else assert.ok(fn.configRead(o.offset & 0xff, o.size) < 2 ** (8 * o.size));
          } else if (o.write) fn.barWrite(o.space, o.offset, o.size, o.value);
          else assert.ok(fn.barRead(o.space, o.offset, o.size) < 2 ** (8 * o.size));
        }
        fn.configWrite(PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
        if (mode === 'modern') fn.barWrite(4, 20, 1, 0);
        else io.w(HEADER.status, 1, 0);
        assert.equal(fn.core.status, 0);
        assert.equal(fn.arbiter?.committed, undefined);
      },
    ),
    { numRuns: 300 },
  );
});
