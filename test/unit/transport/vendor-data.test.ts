/**
 * Vendor data capabilities (spec 4.1.4.8), both halves: the bytes our function presents, the probe's
 * report of them, and that they never change the transport decision (no common cfg: still legacy;
 * with common cfg: still modern), however malformed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Machine } from '../../../src/platform/machine.js';
import { probe, type ProbeResult } from '../../../src/transport/pci/probe.js';
import { describeVendorData } from '../../../src/transport/pci/vendor-cfg-driver.js';
import { UsageError } from '../../../src/errors.js';
import { bdf } from '../../../src/bus/pci-bus.js';
import { ConfigSpaceBuilder, qemuLikeVirtio } from '../../../src/testing/config-space-builder.js';
import { FakePciBus } from '../../../src/testing/fake-pci-bus.js';
import { LoopbackDevice } from '../../helpers/loopback-device.js';

const FN = bdf(0, 3, 0);
const MODERN_RNG = { deviceId: 0x1044, revision: 1 };
const TRANSITIONAL_RNG = { deviceId: 0x1005, revision: 0, subsystemId: 4 };

async function probeFake(b: ConfigSpaceBuilder): Promise<{ result: ProbeResult; bus: FakePciBus }> {
  const bus = new FakePciBus();
  bus.add(FN, b.build());
  return { result: await probe(bus, FN), bus };
}

test('device side: struct virtio_pci_vndr_data after the modern caps, padded to a multiple of 4, read-only', async () => {
  const m = new Machine();
  const { bdf: fn } = m.plugVirtio(new LoopbackDevice(), {
    vendorData: [
      { vendorId: 0x8086, data: new Uint8Array([1, 2, 3]) },
      { vendorId: 0x10de, data: new Uint8Array([]) },
    ],
  });
  // The modern caps end with PCI_CFG at 0x84 (20 bytes): vendor data at 0x98 (12 bytes) and 0xa4 (8 bytes).
  const read = (from: number, n: number): Promise<number[]> =>
    Promise.all(Array.from({ length: n }, (_, i) => m.bus.configRead(fn, from + i, 1)));
  assert.deepEqual(await read(0x98, 12), [0x09, 0x84, 12, 9, 0x86, 0x80, 1, 2, 3, 0, 0, 0]);
  assert.deepEqual(await read(0xa4, 8), [0x09, 0x98, 8, 9, 0xde, 0x10, 0, 0]);
  assert.equal(await m.bus.configRead(fn, 0x34, 1), 0xa4, 'the newest capability heads the list');
  await m.bus.configWrite(fn, 0x9c, 4, 0xffff_ffff);
  assert.deepEqual(await read(0x98, 8), [0x09, 0x84, 12, 9, 0x86, 0x80, 1, 2], 'a driver write changes nothing');

  const result = await probe(m.bus, fn);
  assert.equal(result.kind, 'modern');
  assert.deepEqual(
    result.vendorData.map((v) => [v.capOffset, v.vendorId, [...v.data], v.problems]),
    [
      [0xa4, 0x10de, [0, 0], []],
      [0x98, 0x8086, [1, 2, 3, 0, 0, 0], []],
    ],
  );
  assert.equal(describeVendorData(result.vendorData[1]!), 'vendor-cfg cap at 0x98: vendor 0x8086, 6 bytes of data: 01 02 03 00 00 00');
});

test('device side: vendor_id 0x1af4 is refused (4.1.4.8.1), and so is vendor data on a legacy-only function', () => {
  assert.throws(
    () => new Machine().plugVirtio(new LoopbackDevice(), { vendorData: [{ vendorId: 0x1af4, data: new Uint8Array(2) }] }),
    UsageError,
  );
  assert.throws(
    () =>
      new Machine().plugVirtio(new LoopbackDevice({ deviceType: 4 }), {
        mode: 'legacy',
        vendorData: [{ vendorId: 0x8086, data: new Uint8Array(2) }],
      }),
    /need the modern interface/,
  );
  assert.throws(
    () => new Machine().plugVirtio(new LoopbackDevice(), { vendorData: [{ vendorId: 0x8086, data: new Uint8Array(180) }] }),
    /no room/,
  );
});

test('vendor data never decides: without common cfg a transitional device is legacy, with it modern; both report the caps', async () => {
  const legacy = await probeFake(
    new ConfigSpaceBuilder(TRANSITIONAL_RNG)
      .bar(0, { kind: 'io', size: 0x80 })
      .vendorDataCap(0x8086, [0xaa, 0xbb])
      .vendorDataCap(0x1234, [1, 2, 3, 4, 5, 6]),
  );
  assert.equal(legacy.result.kind, 'legacy');
  assert.deepEqual(
    legacy.result.vendorData.map((v) => v.vendorId),
    [0x8086, 0x1234],
  );
  assert.match(legacy.result.explanation, /^legacy: no common-cfg capability;/);

  const modern = await probeFake(qemuLikeVirtio(TRANSITIONAL_RNG, { legacyBar0: true }).vendorDataCap(0x8086, [0xaa, 0xbb]));
  assert.equal(modern.result.kind, 'modern');
  assert.deepEqual([...modern.result.vendorData[0]!.data], [0xaa, 0xbb]);
  assert.deepEqual(
    modern.bus.log.filter((a) => a.op !== 'configRead' && a.op !== 'configWrite'),
    [],
    'the probe reads configuration space only',
  );
});

test('hostile vendor data: a cap_len too short for vendor_id or past configuration space is skipped with a note; an odd one reported', async () => {
  const b = qemuLikeVirtio(MODERN_RNG)
    .vendorDataCap(0x8086, [], 4)
    .vendorDataCap(0x8086, [9, 9, 9], 9)
    .cap(0x09, 8, (off, dv) => {
      dv.setUint8(off + 2, 0xf8);
      dv.setUint8(off + 3, 9);
    });
  const { result } = await probeFake(b);
  assert.equal(result.kind, 'modern');
  assert.deepEqual(
    result.vendorData.map((v) => [v.capLen, [...v.data], v.problems]),
    [[9, [9, 9, 9], ['cap_len 9 is not a multiple of 4']]],
  );
  assert.deepEqual(
    result.notes.filter((n) => n.startsWith('vendor-cfg')),
    [
      'vendor-cfg cap at 0x90 skipped: cap_len 4 is shorter than struct virtio_pci_vndr_data (6)',
      'vendor-cfg cap at 0xa4 skipped: cap_len 248 runs past the end of configuration space (256 bytes)',
    ],
  );
});

test('a vendor data capability with no common cfg and no legacy interface is still no usable device', async () => {
  const bus = new FakePciBus();
  bus.add(FN, new ConfigSpaceBuilder(MODERN_RNG).vendorDataCap(0x8086, [1, 2]).build());
  await assert.rejects(probe(bus, FN), { code: 'ERR_PROBE_NO_INTERFACE' });
});
