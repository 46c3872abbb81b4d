/**
 * Shared memory regions on the PCI transport, driver side (spec 4.1.4.7): the probe's checks of each
 * VIRTIO_PCI_CAP_SHARED_MEMORY_CFG capability (struct virtio_pci_cap64) and a window through which
 * the driver reads and writes a region in its BAR.
 *
 * Everything in the capability is the device's word: cap_len must hold the 64-bit fields and stay in
 * configuration space, the 64-bit offset and length (exact, in BigInt) must lie inside the BAR, the
 * region must end below 2^53 on the bus (every address here is a number), the BAR must be memory
 * (a region is memory the driver maps), and no two regions may share an id (4.1.4.7.1). A
 * capability that breaks one of these fails the probe (ProbeError ERR_PROBE_BAD_CAPABILITY), as a
 * modern structure that does not fit its BAR does; one that names a reserved or absent BAR is
 * ignored with a note by the probe, as every virtio capability is (4.1.4.1).
 */

import { ProbeError, UsageError } from '../../errors.js';
import type { AccessSize } from '../../memory/access-size.js';
import type { ConfigSpaceSnapshot } from '../../bus/config-space-reader.js';
import type { PciBar } from '../../bus/bars.js';
import type { PciBus } from '../../bus/pci-bus.js';
import { PCI_CONFIG_SPACE_SIZE } from '../../spec/pci.js';
import { VIRTIO_PCI_CAP64_LENGTH_HI, VIRTIO_PCI_CAP64_OFFSET_HI, VIRTIO_PCI_CAP64_SIZE } from '../../spec/virtio-pci.js';

/** The fields of a virtio capability this file reads (probe.ts's VirtioCap has them). */
export interface SharedMemoryCapFields {
  readonly capOffset: number;
  readonly capLen: number;
  readonly bar: number;
  readonly id: number;
  /** The low 32 bits of the offset and length (cap.offset, cap.length). */
  readonly offset: number;
  readonly length: number;
}

/** A validated shared memory region: where it is in its BAR and on the bus. */
export interface SharedMemoryCap {
  /** The region's shmid (cap.id). */
  readonly id: number;
  /** Where the capability sits in configuration space. */
  readonly capOffset: number;
  readonly bar: number;
  /** Offset in the BAR and length, both 64-bit (offset_hi/length_hi joined), exact below 2^53. */
  readonly offset: number;
  readonly length: number;
  /** Bus address of the region's first byte (BAR base + offset). */
  readonly address: number;
}

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;
const TWO_32 = 2n ** 32n;
const SAFE_END = BigInt(Number.MAX_SAFE_INTEGER) + 1n;

/** The 64-bit offset and length of the struct virtio_pci_cap64 at `capOffset` (exact, as BigInt). */
export function readCap64(
  cfg: ConfigSpaceSnapshot,
  cap: Pick<SharedMemoryCapFields, 'capOffset' | 'offset' | 'length'>,
): { offset: bigint; length: bigint } {
  return {
    offset: BigInt(cap.offset) + BigInt(cfg.read32(cap.capOffset + VIRTIO_PCI_CAP64_OFFSET_HI)) * TWO_32,
    length: BigInt(cap.length) + BigInt(cfg.read32(cap.capOffset + VIRTIO_PCI_CAP64_LENGTH_HI)) * TWO_32,
  };
}

/** Check one capability against its (implemented, assigned) BAR; ProbeError when it does not hold. */
function validateSharedMemoryCap(cfg: ConfigSpaceSnapshot, cap: SharedMemoryCapFields, bar: PciBar): SharedMemoryCap {
  const fail = (problem: string): never => {
    throw new ProbeError(
      'ERR_PROBE_BAD_CAPABILITY',
      `shared-memory-cfg cap at ${hex(cap.capOffset)} (id ${cap.id}, BAR${cap.bar}): ${problem}`,
    );
  };
  if (cap.capLen < VIRTIO_PCI_CAP64_SIZE) fail(`cap_len ${cap.capLen} is shorter than struct virtio_pci_cap64 (${VIRTIO_PCI_CAP64_SIZE})`);
  if (cap.capOffset + cap.capLen > PCI_CONFIG_SPACE_SIZE)
    fail(`cap_len ${cap.capLen} runs past the end of configuration space (${PCI_CONFIG_SPACE_SIZE} bytes)`);
  if (bar.kind !== 'memory') fail(`BAR${bar.index} is an I/O BAR: a shared memory region is memory`);
  const { offset, length } = readCap64(cfg, cap);
  // 4.1.4.7.1: the region lies inside the BAR. BigInt: two 64-bit values cannot wrap or round here.
  if (offset + length > BigInt(bar.size)) fail(`[${hex(offset)}, +${hex(length)}) does not fit in BAR${bar.index} (size ${hex(bar.size)})`);
  if (BigInt(bar.base) + offset + length > SAFE_END) fail(`the region ends above 2^53 on the bus (BAR base ${hex(bar.base)})`);
  return {
    id: cap.id,
    capOffset: cap.capOffset,
    bar: cap.bar,
    offset: Number(offset),
    length: Number(length),
    address: bar.base + Number(offset),
  };
}

/**
 * Validate the shared memory capabilities the probe kept (each naming an implemented, assigned BAR),
 * in list order, and index them by id. ProbeError ERR_PROBE_BAD_CAPABILITY for the first that breaks
 * a rule of the file comment, a repeated id included.
 */
export function sharedMemoryRegions(
  cfg: ConfigSpaceSnapshot,
  caps: readonly { readonly cap: SharedMemoryCapFields; readonly bar: PciBar }[],
): ReadonlyMap<number, SharedMemoryCap> {
  const regions = new Map<number, SharedMemoryCap>();
  for (const { cap, bar } of caps) {
    const region = validateSharedMemoryCap(cfg, cap, bar);
    const first = regions.get(region.id);
    if (first !== undefined)
      throw new ProbeError(
        'ERR_PROBE_BAD_CAPABILITY',
        `shared-memory-cfg cap at ${hex(cap.capOffset)} repeats id ${region.id} of the cap at ${hex(first.capOffset)} (spec 4.1.4.7.1: ids are unique)`,
      );
    regions.set(region.id, region);
  }
  return regions;
}

/** "Shared memory id 1: BAR4+0x0, length 0x4000000, at 0x100000000" for the CLI. */
export function describeSharedMemory(region: SharedMemoryCap): string {
  return `Shared memory id ${region.id}: BAR${region.bar}+${hex(region.offset)}, length ${hex(region.length)}, at ${hex(region.address)}`;
}

/**
 * A shared memory region seen through the bus: accesses of 1, 2 or 4 bytes at offsets inside the
 * region (UsageError otherwise, before any bus access), little-endian as the bus does them.
 */
export class SharedMemoryWindow {
  constructor(
    private readonly bus: PciBus,
    readonly region: SharedMemoryCap,
  ) {}

  read(offset: number, size: AccessSize): Promise<number> {
    return this.bus.memRead(this.address(offset, size), size);
  }

  write(offset: number, size: AccessSize, value: number): Promise<void> {
    return this.bus.memWrite(this.address(offset, size), size, value);
  }

  /** `length` bytes from `offset`, read 4 bytes at a time where aligned (the reads are issued together). */
  async readBytes(offset: number, length: number): Promise<Uint8Array> {
    this.address(offset, 1, length);
    const pieces = this.pieces(offset, length);
    const values = await Promise.all(pieces.map((p) => this.read(p.at, p.size)));
    const out = new Uint8Array(length);
    pieces.forEach((p, i) => {
      for (let b = 0; b < p.size; b++) out[p.at - offset + b] = (values[i]! >>> (8 * b)) & 0xff;
    });
    return out;
  }

  /** Write `bytes` from `offset`, 4 bytes at a time where aligned. */
  async writeBytes(offset: number, bytes: Uint8Array): Promise<void> {
    this.address(offset, 1, bytes.length);
    const pieces = this.pieces(offset, bytes.length);
    await Promise.all(
      pieces.map((p) => {
        let value = 0;
        for (let b = p.size - 1; b >= 0; b--) value = value * 256 + bytes[p.at - offset + b]!;
        return this.write(p.at, p.size, value);
      }),
    );
  }

  private pieces(offset: number, length: number): { at: number; size: AccessSize }[] {
    const pieces: { at: number; size: AccessSize }[] = [];
    for (let at = offset; at < offset + length;) {
      const size: AccessSize = at % 4 === 0 && offset + length - at >= 4 ? 4 : 1;
      pieces.push({ at, size });
      at += size;
    }
    return pieces;
  }

  /** The bus address of [offset, offset + length) after checking it lies in the region. */
  private address(offset: number, size: number, length = size): number {
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0 || offset + length > this.region.length)
      throw new UsageError(`shared memory ${this.region.id}: [${offset}, +${length}) is outside its ${this.region.length} bytes`);
    return this.region.address + offset;
  }
}
