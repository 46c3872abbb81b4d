/** Mutants of the split-ring family: our devices with one split-ring rule removed. */

import { deviceRing, type DeviceRingOptions } from '../../../../src/queue/rings.js';
import type { DescriptorChain, DeviceQueue } from '../../../../src/queue/types.js';
import { VIRTIO_F_IN_ORDER, bit } from '../../../../src/spec/features.js';
import {
  VIRTQ_AVAIL_IDX,
  VIRTQ_AVAIL_RING,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_DESC_FLAGS,
  VIRTQ_DESC_LEN,
  VIRTQ_DESC_NEXT,
  VIRTQ_DESC_SIZE,
  VIRTQ_USED_ELEM_SIZE,
  VIRTQ_USED_IDX,
  VIRTQ_USED_RING,
  availRingSize,
} from '../../../../src/spec/ring.js';
import type { Mutants } from './mutant.js';
import { blkDevice, QueueWrapper, remappedChain, ringMutant, rngDevice, wrapRing } from './ring-queues.js';

/** Looks at the chain the next pop() takes, by its head descriptor's flags and the next one's. */
class PeekingQueue extends QueueWrapper {
  private popped = 0;
  constructor(
    inner: DeviceQueue,
    options: DeviceRingOptions,
    private readonly refuse: (flags: number, nextFlags: number) => string | undefined,
  ) {
    super(inner, options);
  }
  override pop(): DescriptorChain | null {
    const { memory, areas, size } = this.options;
    if (memory.read16(areas.driver + VIRTQ_AVAIL_IDX) !== (this.popped & 0xffff)) {
      const head = memory.read16(areas.driver + VIRTQ_AVAIL_RING + (this.popped % size) * 2);
      const desc = areas.desc + head * VIRTQ_DESC_SIZE;
      const flags = memory.read16(desc + VIRTQ_DESC_FLAGS);
      const next = areas.desc + (memory.read16(desc + VIRTQ_DESC_NEXT) % size) * VIRTQ_DESC_SIZE;
      const why = this.refuse(flags, memory.read16(next + VIRTQ_DESC_FLAGS));
      if (why !== undefined) throw new Error(`mutant: ${why}`);
    }
    const chain = super.pop();
    if (chain !== null) this.popped++;
    return chain;
  }
}

/** Keeps the first buffer it uses back until the next notification (pop() at its start) and uses later ones first. */
export class HoldingQueue extends QueueWrapper {
  private first = true;
  private held: [number, number] | undefined;
  private emptied = false;
  override pop(): DescriptorChain | null {
    // The first pop after the ring ran empty starts the next notification's work.
    if (this.emptied && this.held !== undefined) {
      super.pushUsed(...this.held);
      this.held = undefined;
    }
    const chain = super.pop();
    this.emptied = chain === null;
    return chain;
  }
  override pushUsed(head: number, len: number): void {
    if (this.first) {
      this.first = false;
      this.held = [head, len];
      return;
    }
    super.pushUsed(head, len);
  }
}

/** The ring without the in-order layer, keeping its first buffer back. */
export const outOfOrder = (options: DeviceRingOptions): DeviceQueue =>
  new HoldingQueue(deviceRing({ ...options, features: options.features & ~bit(VIRTIO_F_IN_ORDER) }), options);

/** 16-bit and 32-bit byte swaps. */
const swap16 = (v: number): number => ((v & 0xff) << 8) | (v >>> 8);
const swap32 = (v: number): number => ((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24);

export const splitRingMutants: Mutants = {
  'split-ring/legacy-layout': ringMutant(
    'the used ring right after the available ring, without the legacy padding to Queue Align',
    rngDevice,
    (options) =>
      deviceRing({
        ...options,
        areas: { ...options.areas, device: Math.ceil((options.areas.driver + availRingSize(options.size)) / 4) * 4 },
      }),
    { mode: 'transitional' },
  ),
  'split-ring/legacy-guest-endian': ringMutant(
    'used.idx and used elements written big-endian through the legacy interface',
    rngDevice,
    wrapRing(
      (inner, options) =>
        new (class extends QueueWrapper {
          override pushUsed(head: number, len: number): void {
            super.pushUsed(head, len);
            const { memory, areas, size } = this.options;
            const idx = memory.read16(areas.device + VIRTQ_USED_IDX);
            const elem = areas.device + VIRTQ_USED_RING + ((idx - 1) & (size - 1)) * VIRTQ_USED_ELEM_SIZE;
            memory.write32(elem, swap32(memory.read32(elem)));
            memory.write32(elem + 4, swap32(memory.read32(elem + 4)));
            memory.write16(areas.device + VIRTQ_USED_IDX, swap16(idx));
          }
        })(inner, options),
    ),
    { mode: 'transitional' },
  ),
  'split-ring/framing-any-arrangement': ringMutant(
    'takes one descriptor per direction: the first readable and the first writable buffer',
    rngDevice,
    wrapRing(
      (inner, options) =>
        new (class extends QueueWrapper {
          override pop(): DescriptorChain | null {
            const chain = super.pop();
            if (chain === null) return null;
            const map = [...(chain.readable > 0 ? [0] : []), ...(chain.count > chain.readable ? [chain.readable] : [])];
            return remappedChain(chain, map);
          }
        })(inner, options),
    ),
  ),
  'split-ring/no-write-readable': ringMutant(
    "flips the first byte of a chain's first readable buffer when using the chain",
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
  ),
  'split-ring/no-write-descriptor-table': ringMutant(
    "zeroes the len of a chain's head descriptor when using the chain",
    rngDevice,
    wrapRing(
      (inner, options) =>
        new (class extends QueueWrapper {
          override pushUsed(head: number, len: number): void {
            super.pushUsed(head, len);
            this.options.memory.write32(this.options.areas.desc + head * VIRTQ_DESC_SIZE + VIRTQ_DESC_LEN, 0);
          }
        })(inner, options),
    ),
  ),
  'split-ring/indirect-ignores-write-flag': ringMutant(
    'refuses an indirect descriptor with VIRTQ_DESC_F_WRITE set (a fault: DEVICE_NEEDS_RESET)',
    rngDevice,
    wrapRing(
      (inner, options) =>
        new PeekingQueue(inner, options, (flags) =>
          (flags & VIRTQ_DESC_F_INDIRECT) !== 0 && (flags & VIRTQ_DESC_F_WRITE) !== 0 ? 'WRITE on an indirect descriptor' : undefined,
        ),
    ),
  ),
  'split-ring/indirect-after-chain': ringMutant(
    'refuses a chain whose head is chained to an indirect descriptor (a fault: DEVICE_NEEDS_RESET)',
    rngDevice,
    wrapRing(
      (inner, options) =>
        new PeekingQueue(inner, options, (flags, nextFlags) =>
          (flags & VIRTQ_DESC_F_NEXT) !== 0 && (nextFlags & VIRTQ_DESC_F_INDIRECT) !== 0
            ? 'an indirect descriptor after a direct one'
            : undefined,
        ),
    ),
  ),
  'split-ring/used-len-written': ringMutant(
    'writes the random bytes elsewhere but reports them in len',
    rngDevice,
    wrapRing(
      (inner, options) =>
        new (class extends QueueWrapper {
          override pop(): DescriptorChain | null {
            const chain = super.pop();
            if (chain === null) return null;
            const map = Array.from({ length: chain.count }, (_, i) => i);
            return remappedChain(chain, map, (i) => (i < chain.readable ? chain.view(i) : new Uint8Array(chain.len(i))));
          }
        })(inner, options),
    ),
  ),
  'split-ring/in-order-use': ringMutant(
    'VIRTIO_F_IN_ORDER offered, but the first buffer used only after later ones, at the next notification',
    rngDevice,
    outOfOrder,
  ),
};
