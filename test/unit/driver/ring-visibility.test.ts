/**
 * Over a remote bus the driver's rings live in a local image that reaches the device only on flush,
 * and the device's memory may still hold an earlier owner's ring entries. The zeroed rings (2.7.10)
 * must be in the device's memory before the device is told where they are.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Machine } from '../../../src/platform/machine.js';
import { VirtioDriver } from '../../../src/driver/virtio-driver.js';
import { DmaAllocator } from '../../../src/bus/dma-allocator.js';
import type { PciBus } from '../../../src/bus/pci-bus.js';
import type { DmaBuffer, DmaMemory } from '../../../src/memory/dma.js';
import type { GuestMemory } from '../../../src/memory/guest-memory.js';
import { featureSet, VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC } from '../../../src/spec/features.js';
import { VIRTIO_PCI_COMMON_Q_ENABLE } from '../../../src/spec/virtio-pci.js';
import { LoopbackDevice } from '../../helpers/loopback-device.js';
import { RecordingBus } from '../../../src/testing/recording-bus.js';

const DMA_BASE = 0x10_0000;
const DMA_SIZE = 0x10_0000;
const GARBAGE = 0xa5;

/** A local image of guest RAM that reaches it only on flush; remembers what it handed out. */
class ImageDma implements DmaMemory {
  readonly image = new Uint8Array(DMA_SIZE);
  readonly allocated: DmaBuffer[] = [];
  private readonly allocator = new DmaAllocator(DMA_BASE, DMA_SIZE);
  constructor(private readonly memory: GuestMemory) {}
  alloc(size: number, align: number): DmaBuffer {
    const addr = this.allocator.alloc(size, align);
    const buffer = { addr, bytes: this.image.subarray(addr - DMA_BASE, addr - DMA_BASE + size) };
    this.allocated.push(buffer);
    return buffer;
  }
  free(buffer: DmaBuffer): void {
    this.allocator.free(buffer.addr);
  }
  async flush(addr: number, len: number): Promise<void> {
    this.memory.write(addr, this.image.subarray(addr - DMA_BASE, addr - DMA_BASE + len));
  }
  async refresh(addr: number, len: number): Promise<void> {
    this.memory.read(addr, this.image.subarray(addr - DMA_BASE, addr - DMA_BASE + len));
  }
}

/** The machine's bus with {@link ImageDma}; records accesses to find queue_enable. */
class ImageBus extends RecordingBus {
  constructor(
    inner: PciBus,
    readonly image: ImageDma,
  ) {
    super(inner);
  }
  override get dma(): DmaMemory {
    return this.image;
  }
}

test('the zeroed rings reach device memory holding stale entries before the queue address is written, not at the first publish', async (t) => {
  const m = new Machine({ ramSize: 4 << 20 });
  m.memory.write(DMA_BASE, new Uint8Array(DMA_SIZE).fill(GARBAGE)); // a previous owner's rings
  const { bdf } = m.plugVirtio(new LoopbackDevice());
  const dma = new ImageDma(m.memory);
  const bus = new ImageBus(m.bus, dma);
  const drv = await VirtioDriver.open(bus, bdf);
  t.after(() => drv.close());
  await drv.negotiate(featureSet(VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC));
  const seen: number[] = [];
  // Snapshot device memory of every ring allocation at the moment queue_enable is written.
  const layout = drv.probe.kind === 'modern' ? drv.probe.layout : assert.fail('modern probe expected');
  const enableAddr = layout.common.address + VIRTIO_PCI_COMMON_Q_ENABLE;
  const memWrite = bus.memWrite.bind(bus);
  bus.memWrite = async (addr, size, value) => {
    if (addr === enableAddr) {
      for (const b of dma.allocated) {
        const device = new Uint8Array(b.bytes.length);
        m.memory.read(b.addr, device);
        seen.push(device.filter((x) => x !== 0).length);
      }
    }
    return memWrite(addr, size, value);
  };
  await drv.setupQueue(0, { size: 16 });
  assert.equal(dma.allocated.length, 3, 'descriptor table, avail ring, used ring');
  assert.deepEqual(seen, [0, 0, 0], 'device memory of each ring part is all zero when queue_enable is written');
});
