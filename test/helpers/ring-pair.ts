/**
 * Both halves of one split virtqueue over the same guest memory, for ring tests: the driver ring in
 * DMA memory that is either coherent (in-process) or copying (as a remote bus has it), and the
 * device ring over the areas the driver allocated.
 */

import assert from 'node:assert/strict';
import { RamDma } from '../../src/bus/ram-dma.js';
import { DeviceFaultError, type DeviceFaultCode } from '../../src/errors.js';
import type { DmaMemory, DmaSpan } from '../../src/memory/dma.js';
import { ArrayGuestMemory } from '../../src/memory/guest-memory.js';
import { SplitQueue } from '../../src/queue/split/device-ring.js';
import { SplitQueueDriver } from '../../src/queue/split/driver-ring.js';
import type { DescriptorChain } from '../../src/queue/types.js';
import { ImageDma } from './image-dma.js';

export const DMA_BASE = 0x10000;
export const DMA_SIZE = 0x100000;

export interface Pair {
  readonly memory: ArrayGuestMemory;
  readonly dma: DmaMemory;
  readonly driver: SplitQueueDriver<number>;
  readonly device: SplitQueue;
}

export interface PairOptions {
  readonly size: number;
  readonly eventIdx?: boolean;
  readonly indirect?: boolean;
  /** VIRTIO_F_IN_ORDER for the driver (the device ring itself is the same; wrap it in an InOrderQueue). */
  readonly inOrder?: boolean;
  readonly legacy?: boolean;
  /** Copying DMA ({@link ImageDma}) instead of coherent DMA over guest RAM. */
  readonly remote?: boolean;
}

export function pair(options: PairOptions): Pair {
  const memory = new ArrayGuestMemory(DMA_BASE + DMA_SIZE);
  const dma = options.remote ? new ImageDma(memory, DMA_BASE, DMA_SIZE) : new RamDma(memory, DMA_BASE, DMA_SIZE);
  const eventIdx = options.eventIdx ?? false;
  const indirect = options.indirect ?? false;
  const driver = new SplitQueueDriver<number>({
    index: 1,
    size: options.size,
    dma,
    eventIdx,
    indirect,
    inOrder: options.inOrder ?? false,
    legacy: options.legacy ?? false,
  });
  const device = new SplitQueue({
    index: 1,
    size: options.size,
    memory,
    desc: driver.descAddr,
    driver: driver.availAddr,
    device: driver.usedAddr,
    eventIdx,
    indirect,
  });
  return { memory, dma, driver, device };
}

/** A DMA buffer filled with `fill`, as a span. */
export function buffer(dma: DmaMemory, len: number, fill: number): DmaSpan & { bytes: Uint8Array } {
  const b = dma.alloc(len, 8);
  b.bytes.fill(fill);
  return { addr: b.addr, len, bytes: b.bytes };
}

/** `p` rejects with a DeviceFaultError of `code`. */
export async function rejects(p: Promise<unknown>, code: DeviceFaultCode): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof DeviceFaultError, `expected DeviceFaultError, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  });
}

/** The device's job in ring tests: each writable byte k becomes (sum of readable bytes + k) & 0xff. */
export function serve(chain: DescriptorChain): number {
  let sum = 0;
  for (let i = 0; i < chain.readable; i++) for (const b of chain.view(i)) sum += b;
  let k = 0;
  for (let i = chain.readable; i < chain.count; i++) {
    const v = chain.view(i);
    for (let j = 0; j < v.length; j++) v[j] = (sum + k++) & 0xff;
  }
  return chain.writableBytes;
}
