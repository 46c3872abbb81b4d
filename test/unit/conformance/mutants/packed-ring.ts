/** Mutants of the packed-ring family: our devices, offering the packed ring, with one rule of it removed. */

import type { DescriptorChain } from '../../../../src/queue/types.js';
import {
  PVIRTQ_DESC_FLAGS,
  PVIRTQ_DESC_LEN,
  PVIRTQ_DESC_SIZE,
  VIRTQ_DESC_F_AVAIL,
  VIRTQ_DESC_F_USED,
} from '../../../../src/spec/packed-ring.js';
import type { Mutants } from './mutant.js';
import { blkDevice, QueueWrapper, remappedChain, ringMutant, rngDevice, wrapRing } from './ring-queues.js';
import { outOfOrder, splitRingMutants } from './split-ring.js';

const PACKED = { packed: true } as const;

/** A wrapper that finds the ring slot each pushUsed wrote (the first that changed) and hands it to `after`. */
abstract class UsedSlotQueue extends QueueWrapper {
  protected previous: number | undefined;
  override pushUsed(head: number, len: number): void {
    const { memory, areas, size } = this.options;
    const before = memory.view(areas.desc, size * PVIRTQ_DESC_SIZE).slice();
    super.pushUsed(head, len);
    const now = memory.view(areas.desc, before.length);
    const at = before.findIndex((b, i) => b !== now[i]);
    if (at >= 0) this.after(at >> 4, before);
  }
  /** `slot` holds the used descriptor just written; `before` is the ring as it was. */
  protected abstract after(slot: number, before: Uint8Array): void;
}

/** Make every written slot of the ring whose AVAIL bit is clear look available to a device on its first lap. */
function takeAnyDescriptor(memory: QueueWrapper['options']['memory'], desc: number, size: number): void {
  for (let slot = 0; slot < size; slot++) {
    const at = desc + slot * PVIRTQ_DESC_SIZE;
    const flags = memory.read16(at + PVIRTQ_DESC_FLAGS);
    if (memory.read32(at + PVIRTQ_DESC_LEN) > 0 && (flags & VIRTQ_DESC_F_AVAIL) === 0)
      memory.write16(at + PVIRTQ_DESC_FLAGS, (flags & ~VIRTQ_DESC_F_USED) | VIRTQ_DESC_F_AVAIL);
  }
}

const ignoresAvail = ringMutant(
  'takes every written descriptor for available on its first lap, whatever its VIRTQ_DESC_F_AVAIL bit',
  rngDevice,
  wrapRing(
    (inner, options) =>
      new (class extends QueueWrapper {
        override pop(): DescriptorChain | null {
          takeAnyDescriptor(this.options.memory, this.options.areas.desc, this.options.size);
          return super.pop();
        }
      })(inner, options),
  ),
  PACKED,
);

export const packedRingMutants: Mutants = {
  'packed-ring/in-order-use': ringMutant(
    'VIRTIO_F_IN_ORDER offered, but the first buffer used only after later ones, at the next notification',
    rngDevice,
    outOfOrder,
    PACKED,
  ),
  'packed-ring/process-in-ring-order': ignoresAvail,
  'packed-ring/use-only-available': ignoresAvail,
  'packed-ring/used-in-completion-order': ringMutant(
    'writes each used descriptor one slot after where it belongs',
    rngDevice,
    wrapRing(
      (inner, options) =>
        new (class extends UsedSlotQueue {
          protected override after(slot: number, before: Uint8Array): void {
            const { memory, areas, size } = this.options;
            const used = memory.view(areas.desc + slot * PVIRTQ_DESC_SIZE, PVIRTQ_DESC_SIZE).slice();
            memory.write(areas.desc + slot * PVIRTQ_DESC_SIZE, before.subarray(slot * PVIRTQ_DESC_SIZE, (slot + 1) * PVIRTQ_DESC_SIZE));
            memory.write(areas.desc + ((slot + 1) % size) * PVIRTQ_DESC_SIZE, used);
          }
        })(inner, options),
    ),
    PACKED,
  ),
  'packed-ring/no-change-after-used': ringMutant(
    'bumps the len of the previous used descriptor when writing the next',
    rngDevice,
    wrapRing(
      (inner, options) =>
        new (class extends UsedSlotQueue {
          protected override after(slot: number): void {
            const { memory, areas } = this.options;
            if (this.previous !== undefined) {
              const at = areas.desc + this.previous * PVIRTQ_DESC_SIZE + PVIRTQ_DESC_LEN;
              memory.write32(at, memory.read32(at) + 1);
            }
            this.previous = slot;
          }
        })(inner, options),
    ),
    PACKED,
  ),
  'packed-ring/no-write-readable': ringMutant(
    splitRingMutants['split-ring/no-write-readable']!.breaks,
    blkDevice,
    wrapRing(
      (inner, options) =>
        new (class extends QueueWrapper {
          private readonly firstReadable = new Map<number, number>();
          override pop(): DescriptorChain | null {
            const chain = super.pop();
            if (chain !== null && chain.readable > 0) this.firstReadable.set(chain.head, chain.addr(0));
            return chain;
          }
          override pushUsed(head: number, len: number): void {
            const addr = this.firstReadable.get(head);
            if (addr !== undefined) this.options.memory.write8(addr, ~this.options.memory.read8(addr) & 0xff);
            super.pushUsed(head, len);
          }
        })(inner, options),
    ),
    PACKED,
  ),
  'packed-ring/chain-in-order': ringMutant(
    'uses the writable descriptors of a list of three or more in reverse order',
    blkDevice,
    wrapRing(
      (inner, options) =>
        new (class extends QueueWrapper {
          override pop(): DescriptorChain | null {
            const chain = super.pop();
            if (chain === null || chain.count - chain.readable < 3) return chain;
            const readable = Array.from({ length: chain.readable }, (_, i) => i);
            const writable = Array.from({ length: chain.count - chain.readable }, (_, i) => chain.count - 1 - i);
            return remappedChain(chain, [...readable, ...writable]);
          }
        })(inner, options),
    ),
    PACKED,
  ),
};
