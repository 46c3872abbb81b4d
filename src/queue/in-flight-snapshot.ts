/**
 * The chains a device ring holds in flight, as a snapshot carries them (docs/snapshots.md): for each,
 * in the order the device popped them, its id, its buffers (address, length; device-readable ones
 * first), for the packed ring the ring slots it took, and with VIRTIO_F_IN_ORDER the used len of a
 * chain the device model completed but the in-order layer still holds back.
 *
 * The buffers are kept rather than walked again from the ring after restore: the packed ring's used
 * descriptors may already have overwritten an in-flight chain's descriptors (used descriptors are
 * written at the used position, in completion order), and the chain is what the device model was
 * given. Restore checks every one against the ring's rules before anything uses it.
 */

import type { GuestMemory } from '../memory/guest-memory.js';
import type { SnapshotReader } from '../snapshot/snapshot-reader.js';
import { flag, list, struct, u16, u32, u64, type SnapshotStruct } from '../snapshot/snapshot-value.js';
import type { ChainStorage } from './chain-storage.js';
import type { RingFormat } from './ring-format.js';

/** One in-flight chain read back from a snapshot, checked. */
export interface SnapshotChain {
  readonly head: number;
  readonly readable: number;
  readonly addrs: readonly number[];
  readonly lens: readonly number[];
  /** Packed ring: descriptors the chain took in the ring (1 for an indirect chain); split ring: 0. */
  readonly slots: number;
  /** VIRTIO_F_IN_ORDER: the used len given for a chain held back for order; undefined while the device model has it. */
  readonly usedLen: number | undefined;
}

/** The snapshot struct of chain `chain`. */
export function chainSnapshot(chain: ChainStorage, slots: number, usedLen: number | undefined): SnapshotStruct {
  const addrs = [];
  const lens = [];
  for (let k = 0; k < chain.count; k++) {
    addrs.push(u64(chain.addr(k)));
    lens.push(u32(chain.len(k)));
  }
  return struct({
    id: u16(chain.head),
    readable: u16(chain.readable),
    addrs: list(addrs),
    lens: list(lens),
    slots: u16(slots),
    held: flag(usedLen !== undefined),
    usedLen: u32(usedLen ?? 0),
  });
}

/**
 * The in-flight chains of field 'chains' of `r`, for a queue of `size` in `format` over `memory`:
 * ids distinct and below the size, 1 to the chain limit buffers each, every buffer inside guest
 * memory, at most the format's bytes, a held chain's used len within its writable bytes.
 */
export function readChains(r: SnapshotReader, format: RingFormat, size: number, memory: GuestMemory): SnapshotChain[] {
  const seen = new Set<number>();
  const maxBuffers = format.maxChainBuffers(size);
  return r.structs('chains', size).map((c) => {
    const head = c.int('id', 'u16', 0, size - 1);
    if (seen.has(head)) throw c.error('ERR_SNAPSHOT_IN_FLIGHT', `id ${head} is in flight twice`);
    seen.add(head);
    const lens = c.ints('lens', 'u32', maxBuffers);
    const addrItems = c.list('addrs', maxBuffers);
    if (addrItems.length !== lens.length || lens.length === 0)
      throw c.error('ERR_SNAPSHOT_IN_FLIGHT', `${addrItems.length} addresses and ${lens.length} lengths (1 to ${maxBuffers} buffers each)`);
    const readable = c.int('readable', 'u16', 0, lens.length);
    const addrs = addrItems.map((item, k) => {
      if (item.type !== 'u64') throw c.error('ERR_SNAPSHOT_FIELD', `addrs[${k}] is a ${item.type}, expected a u64`);
      const addr = item.value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(item.value) : -1;
      if (addr < 0 || !memory.contains(addr, lens[k]!))
        throw c.rangeError('addrs', `buffer ${k} (0x${item.value.toString(16)}, ${lens[k]} bytes) is outside guest memory`);
      return addr;
    });
    let readableBytes = 0;
    let writableBytes = 0;
    lens.forEach((len, k) => (k < readable ? (readableBytes += len) : (writableBytes += len)));
    if (readableBytes + writableBytes > format.maxChainBytes)
      throw c.rangeError('lens', `${readableBytes + writableBytes} bytes in one chain`);
    const slots = format.name === 'packed' ? c.int('slots', 'u16', 1, size) : 0;
    const usedLen = c.flag('held') ? c.int('usedLen', 'u32', 0, writableBytes) : undefined;
    return { head, readable, addrs, lens, slots, usedLen };
  });
}

/** How many chains of the ring snapshot `r` (checked by the ring's restore) the device model held: they come back, first, when it pops. */
export function modelHeldChains(r: SnapshotReader): number {
  return r.structs('chains', Number.MAX_SAFE_INTEGER).filter((c) => !c.flag('held')).length;
}
