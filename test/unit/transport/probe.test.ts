import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideTransport, probe, virtioDeviceType, type ProbeResult } from '../../../src/transport/pci/probe.js';
import { ConfigSpaceSnapshot } from '../../../src/bus/config-space-reader.js';
import { ProbeError, type ProbeErrorCode } from '../../../src/errors.js';
import { bdf } from '../../../src/bus/pci-bus.js';
import {
  VIRTIO_PCI_CAP_COMMON_CFG,
  VIRTIO_PCI_CAP_DEVICE_CFG,
  VIRTIO_PCI_CAP_ISR_CFG,
  VIRTIO_PCI_CAP_NOTIFY_CFG,
  VIRTIO_PCI_CAP_PCI_CFG,
} from '../../../src/spec/virtio-pci.js';
import { PCI_CAP_ID_VNDR } from '../../../src/spec/pci.js';
import { ConfigSpaceBuilder, qemuLikeVirtio, type VirtioCapSpec } from '../../../src/testing/config-space-builder.js';
import { FakePciBus } from '../../../src/testing/fake-pci-bus.js';

const FN = bdf(0, 3, 0);
const MODERN_RNG = { deviceId: 0x1044, revision: 1 };
const TRANSITIONAL_RNG = { deviceId: 0x1005, revision: 0, subsystemId: 4 };
/** Where the fake bus's allocator puts the first 64-bit BAR (its mem64 window base). */
const MEM64_BASE = 0x80_0000_0000;

async function probeBuilt(
  b: ConfigSpaceBuilder,
  options: { forceLegacy?: boolean } = {},
): Promise<{ result: ProbeResult; bus: FakePciBus }> {
  const bus = new FakePciBus();
  bus.add(FN, b.build());
  return { result: await probe(bus, FN, options), bus };
}

async function probeFails(
  b: ConfigSpaceBuilder,
  code: ProbeErrorCode,
  message: RegExp,
  options: { forceLegacy?: boolean } = {},
): Promise<void> {
  const bus = new FakePciBus();
  bus.add(FN, b.build());
  await assert.rejects(probe(bus, FN, options), (e: unknown) => {
    assert.ok(e instanceof ProbeError, `expected a ProbeError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.match(e.message, message);
    return true;
  });
}

/** A modern device whose capabilities are exactly `caps`, all in a 16 KiB 64-bit BAR4. */
function withCaps(
  caps: VirtioCapSpec[],
  header: { deviceId: number; revision?: number; subsystemId?: number } = MODERN_RNG,
  legacyBar0 = false,
): ConfigSpaceBuilder {
  const b = new ConfigSpaceBuilder(header).bar(4, { kind: 'memory', size: 0x4000, is64: true, prefetchable: true });
  if (legacyBar0) b.bar(0, { kind: 'io', size: 0x80 });
  for (const c of caps) b.virtioCap(c);
  return b;
}
const COMMON: VirtioCapSpec = { cfgType: VIRTIO_PCI_CAP_COMMON_CFG, bar: 4, offset: 0, length: 0x1000 };
const ISR: VirtioCapSpec = { cfgType: VIRTIO_PCI_CAP_ISR_CFG, bar: 4, offset: 0x1000, length: 0x1000 };
const DEVICE: VirtioCapSpec = { cfgType: VIRTIO_PCI_CAP_DEVICE_CFG, bar: 4, offset: 0x2000, length: 0x1000 };
const NOTIFY: VirtioCapSpec = { cfgType: VIRTIO_PCI_CAP_NOTIFY_CFG, bar: 4, offset: 0x3000, length: 0x1000, multiplier: 4 };

test('modern-only device: modern, structures at BAR4 base + cap offset, no BAR access during probe', async () => {
  const { result, bus } = await probeBuilt(qemuLikeVirtio(MODERN_RNG));
  assert.equal(result.kind, 'modern');
  if (result.kind !== 'modern') return;
  assert.equal(result.deviceType, 4);
  assert.equal(result.layout.common.address, MEM64_BASE + 0);
  assert.equal(result.layout.isr.address, MEM64_BASE + 0x1000);
  assert.equal(result.layout.device?.address, MEM64_BASE + 0x2000);
  assert.equal(result.layout.notify.address, MEM64_BASE + 0x3000);
  assert.equal(result.layout.notify.notifyOffMultiplier, 4);
  assert.equal(result.msix?.tableSize, 3);
  // Capabilities: MSI-X at 0x40 (12 bytes), then common 0x4c, isr 0x5c, device 0x6c, notify 0x7c.
  assert.equal(
    result.explanation,
    'modern: common-cfg cap at 0x4c (BAR4+0x0), notify-cfg cap at 0x7c (BAR4+0x3000, multiplier 4), isr-cfg cap at 0x5c (BAR4+0x1000), device-cfg cap at 0x6c (BAR4+0x2000)',
  );
  assert.deepEqual(
    bus.log.filter((a) => a.op !== 'configRead' && a.op !== 'configWrite'),
    [],
    'the probe reads config space only',
  );
});

test('transitional device: modern through capabilities; BAR0 is never accessed', async () => {
  const { result, bus } = await probeBuilt(qemuLikeVirtio(TRANSITIONAL_RNG, { legacyBar0: true }));
  assert.equal(result.kind, 'modern');
  assert.equal(result.deviceType, 4, 'transitional: device type from the subsystem ID');
  assert.match(result.explanation, /^modern: common-cfg cap at 0x4c .*; legacy BAR0 not used$/);
  assert.equal(bus.accesses('ioRead').length + bus.accesses('ioWrite').length, 0);
});

test('transitional device with forceLegacy: legacy through BAR0', async () => {
  const { result } = await probeBuilt(qemuLikeVirtio(TRANSITIONAL_RNG, { legacyBar0: true }), { forceLegacy: true });
  assert.equal(result.kind, 'legacy');
  if (result.kind !== 'legacy') return;
  assert.equal(result.forced, true);
  assert.equal(result.bar0.kind, 'io');
  assert.equal(result.bar0.size, 0x80);
  assert.equal(result.bar0.base, 0xc000);
  assert.equal(result.explanation, 'legacy (forced): capabilities not used; BAR0 is I/O (128 ports at 0xc000)');
});

test('legacy-only device: legacy, and the explanation says why', async () => {
  const b = new ConfigSpaceBuilder({ deviceId: 0x1001, revision: 0, subsystemId: 2 })
    .bar(0, { kind: 'io', size: 0x40 })
    .bar(1, { kind: 'memory', size: 0x1000 })
    .msix(2, 1, 0, 0x800);
  const { result } = await probeBuilt(b);
  assert.equal(result.kind, 'legacy');
  assert.equal(result.deviceType, 2);
  assert.equal(result.explanation, 'legacy: no common-cfg capability; BAR0 is I/O (64 ports at 0xc000)');
});

test('a legacy BAR0 smaller than the legacy header is no legacy interface (the driver would reach past it)', async () => {
  const tiny = (): ConfigSpaceBuilder =>
    new ConfigSpaceBuilder({ deviceId: 0x1001, revision: 0, subsystemId: 2 }).bar(0, { kind: 'io', size: 0x10 });
  await probeFails(tiny(), 'ERR_PROBE_NO_INTERFACE', /BAR0 \(16 ports\) is smaller than the legacy header \(20 bytes\)/);
  await probeFails(tiny(), 'ERR_PROBE_LEGACY_UNAVAILABLE', /BAR0 \(16 ports\) is smaller than the legacy header/, { forceLegacy: true });
  // With MSI-X the header has the two vector registers too: 24 bytes (4.1.4.10).
  const withMsix = tiny().bar(1, { kind: 'memory', size: 0x1000 }).msix(2, 1, 0, 0x800).build();
  const cfg = new ConfigSpaceSnapshot(withMsix.config);
  const bar0 = { index: 0, kind: 'io', is64: false, prefetchable: false, base: 0xc000 } as const;
  const bar1 = { index: 1, kind: 'memory', is64: false, prefetchable: false, size: 0x1000, base: 0xe000_0000 } as const;
  assert.throws(
    () => decideTransport(cfg, [{ ...bar0, size: 20 }, bar1]),
    (e: unknown) =>
      e instanceof ProbeError && /BAR0 \(20 ports\) is smaller than the legacy header \(24 bytes with MSI-X\)/.test(e.message),
  );
  assert.equal(decideTransport(cfg, [{ ...bar0, size: 24 }, bar1]).kind, 'legacy');
});

test('forceLegacy on a modern-only device fails with ERR_PROBE_LEGACY_UNAVAILABLE', async () => {
  await probeFails(qemuLikeVirtio(MODERN_RNG), 'ERR_PROBE_LEGACY_UNAVAILABLE', /device ID 0x1044 is not transitional/, {
    forceLegacy: true,
  });
  const rev1 = qemuLikeVirtio({ deviceId: 0x1005, revision: 1, subsystemId: 4 }, { legacyBar0: true });
  await probeFails(rev1, 'ERR_PROBE_LEGACY_UNAVAILABLE', /revision 1 is not 0/, { forceLegacy: true });
  const memBar0 = withCaps([COMMON, NOTIFY, ISR], TRANSITIONAL_RNG).bar(0, { kind: 'memory', size: 0x1000 });
  await probeFails(memBar0, 'ERR_PROBE_LEGACY_UNAVAILABLE', /BAR0 is not an I\/O BAR/, { forceLegacy: true });
});

test('not virtio: other vendor, or a device ID outside 0x1000..0x107f', async () => {
  await probeFails(
    new ConfigSpaceBuilder({ vendorId: 0x8086, deviceId: 0x100e }),
    'ERR_PROBE_NOT_VIRTIO',
    /0x8086:0x100e is not a virtio PCI function/,
  );
  await probeFails(new ConfigSpaceBuilder({ deviceId: 0x1100 }), 'ERR_PROBE_NOT_VIRTIO', /0x1af4:0x1100/);
  await probeFails(new ConfigSpaceBuilder({ deviceId: 0x0fff }), 'ERR_PROBE_NOT_VIRTIO', /0x1af4:0xfff/);
});

test('no common-cfg and no legacy interface: ERR_PROBE_NO_INTERFACE naming both', async () => {
  await probeFails(
    withCaps([NOTIFY, ISR]),
    'ERR_PROBE_NO_INTERFACE',
    /no common-cfg capability, and no legacy interface \(device ID 0x1044 is not transitional/,
  );
  const rev1 = withCaps([], { deviceId: 0x1005, revision: 1, subsystemId: 4 }, true);
  await probeFails(rev1, 'ERR_PROBE_NO_INTERFACE', /revision 1 is not 0/);
  await probeFails(withCaps([], TRANSITIONAL_RNG), 'ERR_PROBE_NO_INTERFACE', /BAR0 is not implemented/);
});

test('common-cfg without notify-cfg or isr-cfg is an error, not a fallback to legacy', async () => {
  await probeFails(
    withCaps([COMMON, ISR], TRANSITIONAL_RNG, true),
    'ERR_PROBE_MISSING_CAPABILITY',
    /common-cfg cap at 0x40 \(BAR4\+0x0\) present but no notify-cfg capability$/,
  );
  await probeFails(withCaps([COMMON, NOTIFY]), 'ERR_PROBE_MISSING_CAPABILITY', /but no isr-cfg capability$/);
  await probeFails(withCaps([COMMON]), 'ERR_PROBE_MISSING_CAPABILITY', /no notify-cfg capability and no isr-cfg capability/);
});

test('device-cfg is optional (devices without device configuration)', async () => {
  const { result } = await probeBuilt(withCaps([COMMON, NOTIFY, ISR]));
  assert.equal(result.kind, 'modern');
  if (result.kind === 'modern') assert.equal(result.layout.device, undefined);
});

test('BAR index above 5 is reserved: the capability is ignored (spec 4.1.4.1), and the error says so', async () => {
  await probeFails(
    withCaps([{ ...COMMON, bar: 6 }, NOTIFY, ISR]),
    'ERR_PROBE_NO_INTERFACE',
    /no usable common-cfg capability \(common-cfg cap at 0x40 \(BAR6\+0x0\) ignored: BAR index 6 is reserved\)/,
  );
  await probeFails(
    withCaps([COMMON, { ...NOTIFY, bar: 0xff }, ISR]),
    'ERR_PROBE_MISSING_CAPABILITY',
    /no usable notify-cfg capability .*BAR index 255 is reserved/,
  );
  // On a transitional device the legacy interface is what is left, and the explanation says why.
  const { result } = await probeBuilt(withCaps([{ ...COMMON, bar: 7 }, NOTIFY, ISR], TRANSITIONAL_RNG, true));
  assert.equal(result.kind, 'legacy');
  assert.match(result.explanation, /^legacy: no usable common-cfg capability \(.*BAR index 7 is reserved\); BAR0 is I\/O/);
});

test('a capability naming an absent BAR is ignored with its reason', async () => {
  await probeFails(withCaps([{ ...COMMON, bar: 2 }, NOTIFY, ISR]), 'ERR_PROBE_NO_INTERFACE', /BAR2 is not implemented/);
  await probeFails(
    withCaps([COMMON, NOTIFY, { ...ISR, bar: 3 }]),
    'ERR_PROBE_MISSING_CAPABILITY',
    /no usable isr-cfg capability \(isr-cfg cap at 0x64 \(BAR3\+0x1000\) ignored: BAR3 is not implemented\)/,
  );
});

test('a structure in an I/O BAR is used through port I/O (spec 4.1.4.1; Linux and v86 do so)', async () => {
  // common-cfg (56 bytes) in the 128-port I/O BAR0; the rest in memory BAR4.
  const { result } = await probeBuilt(withCaps([{ ...COMMON, bar: 0, length: 0x40 }, NOTIFY, ISR], MODERN_RNG, true));
  assert.equal(result.kind, 'modern');
  if (result.kind !== 'modern') return;
  assert.equal(result.layout.common.space, 'io');
  assert.equal(result.layout.notify.space, 'memory');
  await probeFails(
    withCaps([{ ...COMMON, bar: 0 }, NOTIFY, ISR], MODERN_RNG, true),
    'ERR_PROBE_BAD_CAPABILITY',
    /\[0x0, \+0x1000\) does not fit in BAR0 \(size 0x80\)/,
  );
});

test('a capability in a BAR with no address (no firmware, no bus windows) is ignored', async () => {
  const bus = new FakePciBus();
  bus.resources = undefined;
  bus.add(FN, withCaps([COMMON, NOTIFY, ISR]).build());
  await assert.rejects(
    probe(bus, FN),
    (e: unknown) => e instanceof ProbeError && e.code === 'ERR_PROBE_NO_INTERFACE' && /BAR4 has no address assigned/.test(e.message),
  );
});

test('a structure outside its BAR is rejected, including a wrapping offset + length', async () => {
  await probeFails(
    withCaps([{ ...COMMON, offset: 0x3800 }, NOTIFY, ISR]),
    'ERR_PROBE_BAD_CAPABILITY',
    /common-cfg cap at 0x40 \(BAR4\+0x3800\): \[0x3800, \+0x1000\) does not fit in BAR4 \(size 0x4000\)/,
  );
  await probeFails(
    withCaps([COMMON, { ...NOTIFY, offset: 0xffff_f000, length: 0x2000 }, ISR]),
    'ERR_PROBE_BAD_CAPABILITY',
    /\[0xfffff000, \+0x2000\) does not fit in BAR4/,
  );
  await probeFails(
    withCaps([COMMON, NOTIFY, ISR, { ...DEVICE, offset: 0x3000, length: 0x1004 }]),
    'ERR_PROBE_BAD_CAPABILITY',
    /device-cfg .*does not fit/,
  );
  await probeFails(
    withCaps([COMMON, NOTIFY, { ...ISR, offset: 0x4000, length: 1 }]),
    'ERR_PROBE_BAD_CAPABILITY',
    /isr-cfg .*\[0x4000, \+0x1\) does not fit/,
  );
  // The last byte of the BAR is inside: exactly fitting is fine.
  const { result } = await probeBuilt(withCaps([COMMON, NOTIFY, { ...ISR, offset: 0x3fff, length: 1 }]));
  assert.equal(result.kind, 'modern');
});

test('misaligned structures are rejected: common and device 4-byte, notify 2-byte; ISR has no rule', async () => {
  await probeFails(
    withCaps([{ ...COMMON, offset: 2 }, NOTIFY, ISR]),
    'ERR_PROBE_BAD_CAPABILITY',
    /common-cfg .*offset 0x2 is not 4-byte aligned/,
  );
  await probeFails(
    withCaps([COMMON, { ...NOTIFY, offset: 0x3001 }, ISR]),
    'ERR_PROBE_BAD_CAPABILITY',
    /notify-cfg .*offset 0x3001 is not 2-byte aligned/,
  );
  await probeFails(
    withCaps([COMMON, NOTIFY, ISR, { ...DEVICE, offset: 0x2002 }]),
    'ERR_PROBE_BAD_CAPABILITY',
    /device-cfg .*offset 0x2002 is not 4-byte aligned/,
  );
  const { result } = await probeBuilt(withCaps([COMMON, { ...NOTIFY, offset: 0x3002, length: 0xffe }, { ...ISR, offset: 0x1001 }]));
  assert.equal(result.kind, 'modern');
});

test('too-short structures and capabilities are rejected', async () => {
  await probeFails(withCaps([{ ...COMMON, length: 55 }, NOTIFY, ISR]), 'ERR_PROBE_BAD_CAPABILITY', /length 55 is below the minimum 56/);
  await probeFails(
    withCaps([COMMON, { ...NOTIFY, length: 1 }, ISR]),
    'ERR_PROBE_BAD_CAPABILITY',
    /notify-cfg .*length 1 is below the minimum 2/,
  );
  await probeFails(
    withCaps([COMMON, NOTIFY, { ...ISR, length: 0 }]),
    'ERR_PROBE_BAD_CAPABILITY',
    /isr-cfg .*length 0 is below the minimum 1/,
  );
  await probeFails(
    withCaps([COMMON, NOTIFY, ISR, { ...DEVICE, length: 0 }]),
    'ERR_PROBE_BAD_CAPABILITY',
    /device-cfg .*length 0 is below the minimum 1/,
  );
  await probeFails(
    withCaps([{ ...COMMON, capLen: 12 }, NOTIFY, ISR]),
    'ERR_PROBE_BAD_CAPABILITY',
    /cap_len 12 is shorter than its structure \(16\)/,
  );
  await probeFails(
    withCaps([COMMON, { ...NOTIFY, capLen: 16 }, ISR]),
    'ERR_PROBE_BAD_CAPABILITY',
    /cap_len 16 is shorter than its structure \(20\)/,
  );
});

test('a capability running past the end of configuration space is rejected, not read as zeroes', async () => {
  // notify-cfg moved to 0xf0: its cap_len 20 ends at 0x104, so notify_off_multiplier (at 0x100) does not exist.
  const b = withCaps([COMMON, ISR, NOTIFY]).pointer(1, 0xf0);
  const built = b.build();
  built.config.copyWithin(0xf0, b.capOffset(2), b.capOffset(2) + 16);
  built.config[0xf0 + 1] = 0; // the end of the list
  const bus = new FakePciBus();
  bus.add(FN, built);
  await assert.rejects(
    probe(bus, FN),
    (e: unknown) =>
      e instanceof ProbeError &&
      e.code === 'ERR_PROBE_BAD_CAPABILITY' &&
      /notify-cfg cap at 0xf0 .*cap_len 20 runs past the end of configuration space \(256 bytes\)/.test(e.message),
  );
});

test('an MSI-X capability running past the end of configuration space is not used (its table and PBA fields do not exist)', async () => {
  const b = withCaps([COMMON, ISR, NOTIFY]).msix(3, 4, 0x3800, 0x3c00).pointer(2, 0xf8);
  const built = b.build();
  built.config.copyWithin(0xf8, b.capOffset(3), b.capOffset(3) + 8); // ID, next, control, table; PBA would be at 0x100
  built.config[0xf8 + 1] = 0;
  const bus = new FakePciBus();
  bus.add(FN, built);
  const result = await probe(bus, FN);
  assert.equal(result.msix, undefined);
  assert.ok(
    result.notes.some((n) => /MSI-X cap at 0xf8 ignored: it runs past the end of configuration space/.test(n)),
    result.notes.join('; '),
  );
});

test('notify_off_multiplier must be 0 or an even power of 2', async () => {
  for (const bad of [1, 3, 6, 0x8000_0001])
    await probeFails(
      withCaps([COMMON, { ...NOTIFY, multiplier: bad }, ISR]),
      'ERR_PROBE_BAD_CAPABILITY',
      new RegExp(`notify_off_multiplier ${bad} is neither`),
    );
  for (const good of [0, 2, 4, 0x1000]) {
    const { result } = await probeBuilt(withCaps([COMMON, { ...NOTIFY, multiplier: good }, ISR]));
    assert.equal(result.kind === 'modern' && result.layout.notify.notifyOffMultiplier, good);
  }
});

test('capability list: loops and pointers into the header or misaligned are clear errors', async () => {
  const three = (): ConfigSpaceBuilder => withCaps([COMMON, NOTIFY, ISR]);
  await probeFails(
    three().pointer(2, 0x40),
    'ERR_PROBE_BAD_CAPABILITY',
    /capability list: next pointer of capability 0x64 -> 0x40 loops back/,
  );
  await probeFails(three().pointer(0, 0x40), 'ERR_PROBE_BAD_CAPABILITY', /next pointer of capability 0x40 -> 0x40 loops back/);
  await probeFails(
    three().pointer('head', 0x20),
    'ERR_PROBE_BAD_CAPABILITY',
    /capabilities pointer \(0x34\) -> 0x20 points into the type-0 header/,
  );
  await probeFails(
    three().pointer(1, 0x3c),
    'ERR_PROBE_BAD_CAPABILITY',
    /next pointer of capability 0x50 -> 0x3c points into the type-0 header/,
  );
  await probeFails(three().pointer(0, 0x56), 'ERR_PROBE_BAD_CAPABILITY', /-> 0x56 is not 4-byte aligned/);
});

test('unknown capability IDs and cfg_types are skipped; so are known ones this driver does not use', async () => {
  const b = new ConfigSpaceBuilder(MODERN_RNG)
    .bar(4, { kind: 'memory', size: 0x4000, is64: true })
    .cap(0x42, 8)
    .virtioCap({ cfgType: 0x77, bar: 9, offset: 1, length: 0 })
    .virtioCap({ cfgType: VIRTIO_PCI_CAP_PCI_CFG, bar: 0, offset: 0, length: 0, capLen: 20 })
    .virtioCap(COMMON)
    .virtioCap(NOTIFY)
    .virtioCap(ISR);
  const { result } = await probeBuilt(b);
  assert.equal(result.kind, 'modern');
  assert.deepEqual(result.notes, [
    'cfg_type 119 cap at 0x48 skipped (unknown cfg_type)',
    'pci-cfg cap at 0x58 skipped (not used by this driver)',
  ]);
});

test('the first capability of a type with a usable BAR wins, as in Linux; later ones are not looked at', async () => {
  // First common names a reserved BAR: ignored, the second one is used.
  const { result } = await probeBuilt(withCaps([{ ...COMMON, bar: 6, offset: 0x100 }, { ...COMMON, offset: 0x800 }, NOTIFY, ISR]));
  assert.equal(result.kind === 'modern' && result.layout.common.offset, 0x800);
  // Two usable commons: the first wins even though the second would also do.
  const two = await probeBuilt(withCaps([COMMON, { ...COMMON, offset: 0x800 }, NOTIFY, ISR]));
  assert.equal(two.result.kind === 'modern' && two.result.layout.common.offset, 0);
  assert.deepEqual(two.result.notes, ['common-cfg cap at 0x50 (BAR4+0x800) not used (the first common-cfg wins)']);
  // The winner is then validated; a malformed winner fails the probe rather than falling through.
  await probeFails(
    withCaps([{ ...COMMON, offset: 2 }, COMMON, NOTIFY, ISR]),
    'ERR_PROBE_BAD_CAPABILITY',
    /offset 0x2 is not 4-byte aligned/,
  );
});

test('a function without the capability-list status bit has no capabilities', async () => {
  const built = withCaps([COMMON, NOTIFY, ISR], TRANSITIONAL_RNG, true).build();
  built.config[0x06] = 0; // PCI_STATUS: clear Capabilities List
  const bus = new FakePciBus();
  bus.add(FN, built);
  const result = await probe(bus, FN);
  assert.equal(result.kind, 'legacy');
});

test('device type: 0x1040 + type for modern IDs; subsystem ID (or the spec table) for transitional ones', () => {
  assert.equal(virtioDeviceType(0x1041, 0), 1);
  assert.equal(virtioDeviceType(0x1042, 0x1100), 2);
  assert.equal(virtioDeviceType(0x1000, 1), 1);
  assert.equal(virtioDeviceType(0x1001, 0), 2, 'table: 0x1001 is block');
  assert.equal(virtioDeviceType(0x1003, 3), 3);
  assert.equal(virtioDeviceType(0x1080, 0), undefined);
  assert.equal(virtioDeviceType(0x0fff, 1), undefined);
  assert.equal(PCI_CAP_ID_VNDR, 9);
});
