/**
 * Shared memory capabilities (spec 4.1.4.7) on QEMU's devices, both versions by name (runs once,
 * whatever the leg).
 *
 * QEMU 10.0: virtio-gpu-pci with `hostmem=SIZE` publishes one VIRTIO_PCI_CAP_SHARED_MEMORY_CFG
 * capability (struct virtio_pci_cap64, id 1 = VIRTIO_GPU_SHM_ID_HOST_VISIBLE) for a region that fills
 * a 64-bit prefetchable BAR4 of its own (the modern structures move to BAR2). Our probe must find it,
 * validate it and expose it by id, and our window must reach it through the BAR over qtest. QEMU
 * backs the region with nothing until a blob resource is mapped into it (RESOURCE_MAP_BLOB, which
 * needs virgl or rutabaga, i.e. a GL display: not under qtest), so reads return 0 and writes are
 * dropped, as in any unassigned space; the test checks exactly that.
 *
 * QEMU 7.2: no device of the build publishes one. virtio-gpu-pci has no `hostmem` property (only
 * `max_hostmem`, a limit on resource memory), virtio-gpu-gl-pci's module does not load, and
 * vhost-user-fs-pci has no DAX cache window; the test shows the help output and that our probe finds
 * no region on virtio-gpu-pci.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { findQemu } from '../../../src/platform/qtest/qemu-process.js';
import { probe, type ModernProbe } from '../../../src/transport/pci/probe.js';
import { SharedMemoryWindow } from '../../../src/transport/pci/shared-memory-driver.js';
import { PCI_BASE_ADDRESS_0 } from '../../../src/spec/pci.js';
import { joinU64 } from '../../../src/memory/guest-memory.js';
import { qemuPeerBinary, type QemuPeer } from '../../helpers/peers.js';
import { CATALOGUE } from '../../../src/conformance/catalogue.js';
import { runConformance } from '../../../src/conformance/runner.js';
import { functionTarget } from '../../../src/conformance/target.js';
import { launchQemu, slotBdf } from './qemu-fixture.js';

/** VIRTIO_GPU_SHM_ID_HOST_VISIBLE (spec 5.7.5: the GPU device's host-visible region). */
const GPU_SHM_ID_HOST_VISIBLE = 1;
const HOSTMEM = 64 * 2 ** 20;

/** `-device MODEL,help` of a QEMU version, as its property lines. */
function deviceHelp(version: QemuPeer, model: string): string {
  return execFileSync(findQemu(qemuPeerBinary(version)), ['-nodefaults', '-device', `${model},help`], {
    encoding: 'utf8',
    timeout: 20000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

test('QEMU 10.0 virtio-gpu-pci,hostmem=64M: the probe finds, validates and exposes region 1; the window reaches BAR4 over qtest', async () => {
  assert.match(deviceHelp('10.0', 'virtio-gpu-pci'), /^\s+hostmem=<size>/m);
  const bus = await launchQemu('q35', [`virtio-gpu-pci,hostmem=${HOSTMEM},addr=0x4,disable-legacy=on`], { version: '10.0' });
  const fn = slotBdf(4);
  const result = await probe(bus, fn);
  assert.equal(result.kind, 'modern', result.explanation);
  const { sharedMemory, bars, layout } = result;
  assert.equal(layout.common.bar, 2, 'with hostmem the modern structures are in BAR2');
  assert.deepEqual([...sharedMemory.keys()], [GPU_SHM_ID_HOST_VISIBLE]);
  const region = sharedMemory.get(GPU_SHM_ID_HOST_VISIBLE)!;
  const bar4 = bars.find((b) => b.index === 4)!;
  assert.deepEqual(
    { kind: bar4.kind, is64: bar4.is64, prefetchable: bar4.prefetchable, size: bar4.size },
    { kind: 'memory', is64: true, prefetchable: true, size: HOSTMEM },
  );
  assert.deepEqual({ bar: region.bar, offset: region.offset, length: region.length }, { bar: 4, offset: 0, length: HOSTMEM });
  // The region is where the BAR registers say BAR4 is (above 4 GiB, in the bus's 64-bit window).
  const lo = await bus.configRead(fn, PCI_BASE_ADDRESS_0 + 16, 4);
  const hi = await bus.configRead(fn, PCI_BASE_ADDRESS_0 + 20, 4);
  assert.equal(region.address, joinU64(lo & ~0xf, hi));
  assert.ok(region.address >= 2 ** 32);

  const window = new SharedMemoryWindow(bus, region);
  // Nothing is mapped into QEMU's hostmem container without a GL blob: unassigned space, 0 on read.
  assert.deepEqual([...(await window.readBytes(0, 8))], [0, 0, 0, 0, 0, 0, 0, 0]);
  await window.write(HOSTMEM - 4, 4, 0x12345678);
  assert.equal(await window.read(HOSTMEM - 4, 4), 0, 'a write into the unbacked region is dropped');
  await assert.rejects(async () => window.read(HOSTMEM - 2, 4), /outside its 67108864 bytes/);
  // The device keeps working: common cfg answers through BAR2 after the region accesses.
  assert.notEqual(await bus.memRead(layout.common.address + 4, 4), 0xffff_ffff, 'device_feature reads through BAR2');
});

test("QEMU 10.0 virtio-gpu-pci,hostmem=64M keeps the catalogue's shared memory statements (pci-capabilities family)", async () => {
  const device = `virtio-gpu-pci,hostmem=${HOSTMEM},disable-legacy=on`;
  const bus = await launchQemu('q35', [`${device},addr=0x4`], { version: '10.0' });
  const run = await runConformance(functionTarget('virtio-gpu-pci hostmem', device, bus, slotBdf(4)), CATALOGUE, {
    families: ['pci-capabilities'],
    timeoutMs: 2000,
  });
  const verdict = (id: string): string | undefined => run.results.find((r) => r.statement === id)?.verdict;
  assert.equal(verdict('pci-capabilities/shared-memory-within-bar'), 'pass');
  assert.equal(verdict('pci-capabilities/shared-memory-id-unique'), 'pass');
  assert.equal(verdict('pci-capabilities/vendor-data-size'), 'not-applicable', 'QEMU has no vendor data capability');
  assert.deepEqual(
    run.results
      .filter((r) => r.verdict !== 'pass' && r.verdict !== 'not-applicable' && r.verdict !== 'not-checkable')
      .map((r) => r.statement),
    [],
  );
});

test('QEMU 10.0 virtio-gpu-pci without hostmem publishes no shared memory capability', async () => {
  const bus = await launchQemu('q35', ['virtio-gpu-pci,addr=0x4,disable-legacy=on'], { version: '10.0' });
  const result = (await probe(bus, slotBdf(4))) as ModernProbe;
  assert.equal(result.sharedMemory.size, 0);
  assert.equal(result.layout.common.bar, 4);
});

test('QEMU 7.2 publishes no shared memory capability: no hostmem on virtio-gpu-pci, no DAX window on vhost-user-fs-pci', async () => {
  const gpu = deviceHelp('7.2', 'virtio-gpu-pci');
  assert.match(gpu, /max_hostmem=/);
  assert.doesNotMatch(gpu, /^\s+hostmem=/m);
  assert.doesNotMatch(deviceHelp('7.2', 'vhost-user-fs-pci'), /cache/);
  const bus = await launchQemu('q35', ['virtio-gpu-pci,addr=0x4,disable-legacy=on'], { version: '7.2' });
  const result = await probe(bus, slotBdf(4));
  assert.equal(result.kind, 'modern');
  assert.equal(result.sharedMemory.size, 0);
  assert.deepEqual(
    result.notes.filter((n) => n.includes('shared-memory')),
    [],
  );
});
