import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatLspci } from '../../../src/driver/lspci.js';
import { assignBars } from '../../../src/bus/bars.js';
import { ConfigSpaceSnapshot, readConfigSpace } from '../../../src/bus/config-space-reader.js';
import { bdf } from '../../../src/bus/pci-bus.js';
import { Machine } from '../../../src/platform/machine.js';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import { ConfigSpaceBuilder, qemuLikeVirtio } from '../../../src/testing/config-space-builder.js';
import { FakePciBus } from '../../../src/testing/fake-pci-bus.js';
import { SharedMemory } from '../../../src/core/shared-memory.js';
import { LoopbackDevice } from '../../helpers/loopback-device.js';

const FN = bdf(0, 5, 0);

test('lspci -vv style decode of a transitional device: header, regions, MSI-X and virtio capabilities', async () => {
  const bus = new FakePciBus();
  bus.add(
    FN,
    qemuLikeVirtio({ deviceId: 0x1001, revision: 0, subsystemId: 2, classCode: 0x010000 }, { legacyBar0: true }).cap(0x42, 4).build(),
  );
  const bars = await assignBars(bus, FN);
  const text = formatLspci(FN, await readConfigSpace(bus, FN), bars);
  assert.equal(
    text,
    [
      '00:05.0 SCSI storage controller [0100]: Device [1af4:1001] (rev 00)',
      '\tSubsystem: Device [1af4:0002]',
      '\tControl: I/O+ Mem+ BusMaster+ DisINTx-',
      '\tStatus: Cap+ INTx-',
      '\tInterrupt: pin A routed to IRQ 0',
      '\tRegion 0: I/O ports at c000 [size=128]',
      '\tRegion 1: Memory at e0000000 (32-bit, non-prefetchable) [size=4K]',
      '\tRegion 4: Memory at 8000000000 (64-bit, prefetchable) [size=16K]',
      '\tCapabilities: [40] MSI-X: Enable- Count=3 Masked-',
      '\t\tVector table: BAR=1 offset=00000000',
      '\t\tPBA: BAR=1 offset=00000800',
      '\tCapabilities: [4c] Vendor Specific Information: VirtIO: common-cfg',
      '\t\tBAR=4 offset=00000000 size=00001000',
      '\tCapabilities: [5c] Vendor Specific Information: VirtIO: isr-cfg',
      '\t\tBAR=4 offset=00001000 size=00001000',
      '\tCapabilities: [6c] Vendor Specific Information: VirtIO: device-cfg',
      '\t\tBAR=4 offset=00002000 size=00001000',
      '\tCapabilities: [7c] Vendor Specific Information: VirtIO: notify-cfg',
      '\t\tBAR=4 offset=00003000 size=00001000 multiplier=00000004',
      '\tCapabilities: [90] Unknown capability ID 0x42',
    ].join('\n'),
  );
});

test('lspci decode: unknown cfg_types are named as such, and a broken list is shown, not thrown', () => {
  // QEMU's virtio-rng class: base 0x00, subclass 0xff, which lspci calls "Unclassified device [00ff]".
  const built = new ConfigSpaceBuilder({ deviceId: 0x1041, classCode: 0x00ff00 })
    .virtioCap({ cfgType: 0x63, bar: 2, offset: 0x10, length: 0x20 })
    .pointer(0, 0x40)
    .build();
  const text = formatLspci(FN, new ConfigSpaceSnapshot(built.config), []);
  assert.match(text, /^00:05\.0 Unclassified device \[00ff\]: Device \[1af4:1041\] \(rev 01\)\n/);
  assert.match(
    text,
    /Capabilities: \[40\] Vendor Specific Information: VirtIO: <unknown cfg_type 99>\n\t\tBAR=2 offset=00000010 size=00000020/,
  );
  assert.match(text, /Capabilities: <broken list: next pointer of capability 0x40 -> 0x40 loops back to an earlier capability>$/);
});

test("lspci decode of the in-process machine's modern rng device", async () => {
  const m = new Machine({ ramSize: 1 << 20 });
  const { bdf: fn } = m.plugVirtio(new RngDevice());
  const bars = await assignBars(m.bus, fn);
  const text = formatLspci(fn, await readConfigSpace(m.bus, fn), bars);
  assert.match(text, /^00:00\.0 Unclassified device \[00ff\]: Device \[1af4:1044\] \(rev 01\)$/m);
  assert.match(text, /Region 4: Memory at 10000000000 \(64-bit, prefetchable\) \[size=16K\]/);
  for (const name of ['common-cfg', 'notify-cfg', 'isr-cfg', 'device-cfg']) assert.match(text, new RegExp(`VirtIO: ${name}\\n`));
});

test('lspci decode of shared memory (64-bit offset and length, id) and vendor data (vendor_id, bytes) capabilities', async () => {
  const m = new Machine({ ramSize: 1 << 20 });
  const { bdf: fn } = m.plugVirtio(
    new LoopbackDevice({ sharedMemoryRegions: [new SharedMemory(1, 0x3000), new SharedMemory(9, 0x1000)] }),
    { vendorData: [{ vendorId: 0x8086, data: new Uint8Array([0xca, 0xfe]) }] },
  );
  const bars = await assignBars(m.bus, fn);
  const text = formatLspci(fn, await readConfigSpace(m.bus, fn), bars);
  assert.match(text, /Region 2: Memory at [0-9a-f]+ \(64-bit, prefetchable\) \[size=16K\]/);
  assert.match(
    text,
    /Capabilities: \[40\] Vendor Specific Information: VirtIO: shared-memory-cfg\n\t\tBAR=2 offset=0000000000000000 size=0000000000003000 id=1$/,
  );
  assert.match(
    text,
    /Capabilities: \[58\] Vendor Specific Information: VirtIO: shared-memory-cfg\n\t\tBAR=2 offset=0000000000003000 size=0000000000001000 id=9\n/,
  );
  assert.match(text, /Capabilities: \[c8\] Vendor Specific Information: VirtIO: vendor-cfg\n\t\tvendor=8086 len=8 data=\[ca fe\]/);
});

test('lspci decode of hostile shared memory and vendor data capabilities: above 4 GiB, too short, odd lengths', () => {
  const built = new ConfigSpaceBuilder({ deviceId: 0x1041 })
    .sharedMemoryCap({ bar: 4, id: 3, offset: 2 ** 40, length: 2 ** 33 + 1 })
    .sharedMemoryCap({ bar: 4, id: 4, offset: 0, length: 0, capLen: 16 })
    .vendorDataCap(0x10de, [1, 2, 3], 9)
    .vendorDataCap(0x10de, [], 4)
    .build();
  const text = formatLspci(FN, new ConfigSpaceSnapshot(built.config), []);
  assert.match(text, /\t\tBAR=4 offset=0000010000000000 size=0000000200000001 id=3\n/);
  assert.match(text, /\t\tBAR=4 id=4 <cap_len 16 too short for virtio_pci_cap64>\n/);
  assert.match(text, /\t\tvendor=10de len=9 data=\[01 02 03\] <cap_len 9 is not a multiple of 4>\n/);
  assert.match(text, /\t\t<unreadable: cap_len 4 is shorter than struct virtio_pci_vndr_data \(6\)>$/);
});
