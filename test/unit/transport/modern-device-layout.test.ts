/**
 * The config space of a modern virtio-pci function, byte for byte, against an image built here
 * from the spec's struct layouts (4.1.4) and QEMU 7.2's placement (shared/QTEST.md), and a
 * property test that no register access of any width at any offset throws.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ModernHarness } from '../../helpers/modern-harness.js';
import type { AccessSize } from '../../../src/memory/access-size.js';
import { VirtioPciFunction } from '../../../src/transport/pci/virtio-pci-function.js';
import { LoopbackDevice } from '../../helpers/loopback-device.js';
import { ArrayGuestMemory } from '../../../src/memory/guest-memory.js';

function le(value: number, width: number): number[] {
  return Array.from({ length: width }, (_, i) => Math.floor(value / 2 ** (8 * i)) & 0xff);
}

/** struct virtio_pci_cap (4.1.4): cap_vndr 0x09, cap_next, cap_len, cfg_type, bar, id, padding[2], offset, length. */
function virtioCap(next: number, len: number, cfgType: number, bar: number, offset: number, length: number): number[] {
  return [0x09, next, len, cfgType, bar, 0, 0, 0, ...le(offset, 4), ...le(length, 4)];
}

/** The expected 256 bytes of a modern virtio-blk-like function (device type 2) after reset. */
function expectedImage(): Uint8Array {
  const image = new Uint8Array(256);
  const put = (at: number, bytes: number[]): void => bytes.forEach((b, i) => (image[at + i] = b));
  put(0x00, le(0x1af4, 2)); // vendor: Red Hat / virtio (4.1.2)
  put(0x02, le(0x1040 + 2, 2)); // device: 0x1040 + virtio device ID
  put(0x06, le(0x0010, 2)); // status: capability list
  put(0x08, [0x01]); // revision 1: non-transitional (4.1.2.1)
  put(0x09, [0x00, 0x00, 0x01]); // class 01 00 00: mass storage, SCSI (QEMU's virtio-blk)
  put(0x20, le(0x0000_000c, 4)); // BAR4: 64-bit, prefetchable memory
  put(0x2c, le(0x1af4, 2)); // subsystem vendor
  put(0x2e, le(0x1100, 2)); // subsystem: QEMU's default for modern devices
  put(0x34, [0x84]); // capability list head: the last one added
  put(0x3d, [0x01]); // INTA#
  put(0x40, virtioCap(0x00, 16, 1, 4, 0x0000, 0x1000)); // common cfg
  put(0x50, virtioCap(0x40, 16, 3, 4, 0x1000, 0x1000)); // ISR
  put(0x60, virtioCap(0x50, 16, 4, 4, 0x2000, 0x1000)); // device cfg
  put(0x70, [...virtioCap(0x60, 20, 2, 4, 0x3000, 0x1000), ...le(4, 4)]); // notify, multiplier 4
  put(0x84, [...virtioCap(0x70, 20, 5, 0, 0, 0), 0, 0, 0, 0]); // PCI_CFG access window
  return image;
}

function compose(image: Uint8Array, offset: number, size: number): number {
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = v * 256 + (image[offset + i] ?? 0);
  return v;
}

test('config space: every width at every offset matches the spec/QEMU image', () => {
  const fn = new VirtioPciFunction(new LoopbackDevice({ deviceType: 2 }), {
    memory: new ArrayGuestMemory(4096),
    sendMsi: () => {},
    setIntx: () => {},
  });
  const image = expectedImage();
  for (const size of [1, 2, 4] as const)
    for (let offset = 0; offset < 256; offset++)
      assert.equal(fn.configRead(offset, size), compose(image, offset, size), `read${size * 8} at 0x${offset.toString(16)}`);
  assert.deepEqual(
    fn.bars.map((b) => b && [b.kind, b.size, b.is64, b.prefetchable]),
    [undefined, undefined, undefined, undefined, ['memory', 0x4000, true, true], undefined],
  );
});

test('modernBar64: false makes BAR4 a 32-bit prefetchable memory BAR: BAR5 is no upper half, so the guest cannot place it above 4 GiB', () => {
  const host = { memory: new ArrayGuestMemory(4096), sendMsi: () => {}, setIntx: () => {} };
  const fn = new VirtioPciFunction(new LoopbackDevice({ deviceType: 2 }), host, { modernBar64: false });
  assert.deepEqual(fn.bars[4], { kind: 'memory', size: 0x4000, is64: false, prefetchable: true });
  assert.equal(fn.configRead(0x20, 4), 0x0000_0008, 'BAR4 type bits: memory, 32-bit, prefetchable');
  // Sizing (PCI 3.0 6.2.5.1): the 16 KiB size shows in BAR4; BAR5 is unimplemented and reads 0.
  fn.configWrite(0x20, 4, 0xffff_ffff);
  fn.configWrite(0x24, 4, 0xffff_ffff);
  assert.equal(fn.configRead(0x20, 4), 0xffff_c008);
  assert.equal(fn.configRead(0x24, 4), 0);
  // A guest writing a high dword (as to a 64-bit BAR) leaves the BAR where the low dword says.
  fn.configWrite(0x20, 4, 0xfe80_0000);
  fn.configWrite(0x24, 4, 1);
  fn.configWrite(0x04, 2, 0x2); // memory space on
  assert.deepEqual(
    fn.decodedBars().map((b) => [b.index, b.base]),
    [[4, 0xfe80_0000]],
  );
  // The default, QEMU's layout, takes the high dword: the same writes place BAR4 at 0x1_fe80_0000.
  const fn64 = new VirtioPciFunction(new LoopbackDevice({ deviceType: 2 }), host);
  fn64.configWrite(0x20, 4, 0xfe80_0000);
  fn64.configWrite(0x24, 4, 1);
  fn64.configWrite(0x04, 2, 0x2);
  assert.deepEqual(
    fn64.decodedBars().map((b) => [b.index, b.base]),
    [[4, 0x1_fe80_0000]],
  );
});

test('class codes per device type, as QEMU: net 0x020000, blk 0x010000, console 0x078000, others 0x00ff00 (unclassified), checked against QEMU 7.2', () => {
  const host = { memory: new ArrayGuestMemory(4096), sendMsi: () => {}, setIntx: () => {} };
  for (const [type, cls] of [
    [1, 0x020000],
    [2, 0x010000],
    [3, 0x078000],
    [4, 0x00ff00],
    [63, 0x00ff00],
  ] as const) {
    const fn = new VirtioPciFunction(new LoopbackDevice({ deviceType: type }), host);
    assert.equal(fn.configRead(0x08, 4) >>> 8, cls, `type ${type}`);
    assert.equal(fn.configRead(0x02, 2), 0x1040 + type);
  }
});

test('property: random register traffic of every width at every offset never throws; reset recovers', () => {
  type Op =
    | { kind: 'config'; offset: number; size: AccessSize; value: number; write: boolean }
    | { kind: 'bar'; bar: number; offset: number; size: AccessSize; value: number; write: boolean };
  const size = fc.constantFrom(1, 2, 4) as fc.Arbitrary<AccessSize>;
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({
      kind: fc.constant('config' as const),
      offset: fc.integer({ min: 0, max: 257 }),
      size,
      value: fc.nat(),
      write: fc.boolean(),
    }),
    fc.record({
      kind: fc.constant('bar' as const),
      bar: fc.integer({ min: 0, max: 6 }),
      // Mostly the interesting registers, sometimes anywhere in the 16 KiB BAR and beyond.
      offset: fc.oneof(
        fc.integer({ min: 0, max: 0x44 }),
        fc.integer({ min: 0x1000, max: 0x1004 }),
        fc.integer({ min: 0x2000, max: 0x200c }),
        fc.integer({ min: 0x3000, max: 0x3010 }),
        fc.integer({ min: 0, max: 0x4004 }),
      ),
      size,
      value: fc.oneof(fc.nat(), fc.constantFrom(0, 1, 3, 7, 11, 15, 0xff, 0xffff, 0xffff_ffff)),
      write: fc.boolean(),
    }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const h = new ModernHarness({ memory: new ArrayGuestMemory(64 << 10), queueMaxSizes: [8, 4] }).enableBar();
      for (const o of ops) {
        if (o.kind === 'config') {
          if (o.write) h.fn.configWrite(o.offset, o.size, o.value);
          else assert.ok(h.fn.configRead(o.offset, o.size) < 2 ** (8 * o.size));
        } else if (o.write) {
          h.fn.barWrite(o.bar, o.offset, o.size, o.value);
        } else {
          assert.ok(h.fn.barRead(o.bar, o.offset, o.size) < 2 ** (8 * o.size));
        }
      }
      h.enableBar();
      h.setStatus(0);
      assert.equal(h.status, 0);
      assert.equal(h.negotiate(), 1 | 2 | 8, 'the device negotiates normally after reset');
    }),
    { numRuns: 300 },
  );
});
