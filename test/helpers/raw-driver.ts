/**
 * A hand-driven virtio driver for the driver-audit tests: raw register reads and writes through the
 * in-process Machine's bus at the spec's offsets (modern BAR4 or the legacy BAR0 header), and a
 * split or packed ring laid out by hand in guest RAM, so that a test can break exactly one driver
 * rule and nothing else.
 */

import { DriverAudit } from '../../src/core/driver-audit.js';
import type { VirtioDevice } from '../../src/core/virtio-device.js';
import { assignBars } from '../../src/bus/bars.js';
import type { AccessSize } from '../../src/memory/access-size.js';
import { splitU64 } from '../../src/memory/guest-memory.js';
import { Machine } from '../../src/platform/machine.js';
import { MODERN_BAR, MODERN_COMMON_OFFSET, MODERN_DEVICE_OFFSET, MODERN_NOTIFY_OFFSET } from '../../src/transport/pci/modern-device.js';
import { LEGACY_BAR } from '../../src/transport/pci/legacy-device.js';
import type { VirtioPciFunction, VirtioPciFunctionOptions } from '../../src/transport/pci/virtio-pci-function.js';
import { MODERN_NOTIFY_OFF_MULTIPLIER } from '../../src/transport/pci/notify-cfg.js';
import { featureWord, VIRTIO_F_VERSION_1, bit } from '../../src/spec/features.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
} from '../../src/spec/status.js';
import * as P from '../../src/spec/virtio-pci.js';
import { VIRTQ_AVAIL_IDX, VIRTQ_AVAIL_RING, VIRTQ_DESC_SIZE } from '../../src/spec/ring.js';
import { PVIRTQ_DESC_FLAGS, PVIRTQ_DESC_ID, PVIRTQ_DESC_LEN, PVIRTQ_DESC_SIZE, VIRTQ_DESC_F_AVAIL } from '../../src/spec/packed-ring.js';

/** Where the hand-made rings and buffers live in guest RAM. */
export const RING = { desc: 0x10000, driver: 0x11000, device: 0x12000, indirect: 0x13000, buffers: 0x20000 } as const;
/** Queue size the tests program. */
export const QUEUE_SIZE = 8;

/** One descriptor as the test writes it. */
export interface Desc {
  readonly addr: number;
  readonly len: number;
  readonly flags: number;
  readonly next?: number;
}

export class RawDriver {
  readonly audit = new DriverAudit();
  readonly machine = new Machine({ ramSize: 4 << 20 });
  readonly fn: VirtioPciFunction;
  private readonly bdf: number;
  private barBase = new Map<number, number>();
  private availIdx = 0;

  private constructor(device: VirtioDevice, options: VirtioPciFunctionOptions) {
    const plugged = this.machine.plugVirtio(device, { ...options, audit: this.audit });
    this.fn = plugged.fn;
    this.bdf = plugged.bdf;
  }

  static async open(device: VirtioDevice, options: VirtioPciFunctionOptions = {}): Promise<RawDriver> {
    const d = new RawDriver(device, options);
    for (const bar of await assignBars(d.machine.bus, d.bdf)) d.barBase.set(bar.index, bar.base);
    return d;
  }

  /** The IDs recorded so far. */
  get ids(): string[] {
    return this.audit.findings.map((f) => f.requirement.id);
  }

  /** A configuration space write to the function. */
  configWrite(offset: number, size: AccessSize, value: number): Promise<void> {
    return this.machine.bus.configWrite(this.bdf, offset, size, value);
  }

  // ---- modern registers ----
  common(offset: number, size: AccessSize, value?: number): Promise<number | void> {
    const at = this.barBase.get(MODERN_BAR)! + MODERN_COMMON_OFFSET + offset;
    return value === undefined ? this.machine.bus.memRead(at, size) : this.machine.bus.memWrite(at, size, value);
  }
  async commonRead(offset: number, size: AccessSize): Promise<number> {
    return (await this.common(offset, size)) as number;
  }
  async status(value: number): Promise<void> {
    await this.common(P.VIRTIO_PCI_COMMON_STATUS, 1, value);
  }
  async readStatus(): Promise<number> {
    return this.commonRead(P.VIRTIO_PCI_COMMON_STATUS, 1);
  }
  async deviceConfigRead(offset: number, size: AccessSize): Promise<number> {
    return this.machine.bus.memRead(this.barBase.get(MODERN_BAR)! + MODERN_DEVICE_OFFSET + offset, size);
  }
  async deviceConfigWrite(offset: number, size: AccessSize, value: number): Promise<void> {
    await this.machine.bus.memWrite(this.barBase.get(MODERN_BAR)! + MODERN_DEVICE_OFFSET + offset, size, value);
  }
  async notify(queue: number, size: AccessSize = 2, value = queue): Promise<void> {
    await this.machine.bus.memWrite(
      this.barBase.get(MODERN_BAR)! + MODERN_NOTIFY_OFFSET + queue * MODERN_NOTIFY_OFF_MULTIPLIER,
      size,
      value,
    );
  }
  async offered(): Promise<bigint> {
    let set = 0n;
    for (const select of [0, 1]) {
      await this.common(P.VIRTIO_PCI_COMMON_DFSELECT, 4, select);
      set |= BigInt(await this.commonRead(P.VIRTIO_PCI_COMMON_DF, 4)) << BigInt(32 * select);
    }
    return set;
  }
  async acceptFeatures(features: bigint): Promise<void> {
    for (const select of [0, 1]) {
      await this.common(P.VIRTIO_PCI_COMMON_GFSELECT, 4, select);
      await this.common(P.VIRTIO_PCI_COMMON_GF, 4, featureWord(features, select));
    }
  }

  /** Reset (waiting for 0), ACKNOWLEDGE, DRIVER, `features` (default VERSION_1 and `extra`), FEATURES_OK, re-read. */
  async negotiate(extra = 0n, features = bit(VIRTIO_F_VERSION_1) | extra): Promise<void> {
    await this.status(0);
    while ((await this.readStatus()) !== 0);
    await this.status(VIRTIO_CONFIG_S_ACKNOWLEDGE);
    await this.status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    await this.offered();
    await this.acceptFeatures(features);
    await this.status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
    await this.readStatus();
  }

  /** Program queue `index` at `areas` (default {@link RING}) and enable it. */
  async setupQueue(index = 0, areas: { desc: number; driver: number; device: number } = RING, size = QUEUE_SIZE): Promise<void> {
    await this.common(P.VIRTIO_PCI_COMMON_Q_SELECT, 2, index);
    await this.common(P.VIRTIO_PCI_COMMON_Q_SIZE, 2, size);
    const fields: [number, number][] = [
      [P.VIRTIO_PCI_COMMON_Q_DESCLO, areas.desc],
      [P.VIRTIO_PCI_COMMON_Q_AVAILLO, areas.driver],
      [P.VIRTIO_PCI_COMMON_Q_USEDLO, areas.device],
    ];
    for (const [lo, addr] of fields) {
      const [l, h] = splitU64(addr);
      await this.common(lo, 4, l);
      await this.common(lo + 4, 4, h);
    }
    await this.common(P.VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
  }

  async driverOk(): Promise<void> {
    await this.status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
  }

  /** negotiate, queue 0 set up, DRIVER_OK: a correct modern start. */
  async start(extra = 0n): Promise<void> {
    await this.negotiate(extra);
    await this.setupQueue(0);
    await this.driverOk();
  }

  // ---- legacy header ----
  async legacy(offset: number, size: AccessSize, value?: number): Promise<number> {
    const port = this.barBase.get(LEGACY_BAR)! + offset;
    if (value === undefined) return this.machine.bus.ioRead(port, size);
    await this.machine.bus.ioWrite(port, size, value);
    return 0;
  }

  // ---- rings ----
  /** Write descriptors at table indexes 0.. of the split ring (or of an indirect table at `table`). */
  writeSplitDescs(descs: readonly Desc[], table: number = RING.desc): void {
    const mem = this.machine.memory;
    descs.forEach((d, i) => {
      const at = table + i * VIRTQ_DESC_SIZE;
      const [lo, hi] = splitU64(d.addr);
      mem.write32(at, lo);
      mem.write32(at + 4, hi);
      mem.write32(at + 8, d.len);
      mem.write16(at + 12, d.flags);
      mem.write16(at + 14, d.next ?? 0);
    });
  }
  /** Make the chain at `head` available on the split ring and notify queue `queue`. */
  async postSplit(head = 0, queue = 0): Promise<void> {
    const mem = this.machine.memory;
    mem.write16(RING.driver + VIRTQ_AVAIL_RING + (this.availIdx % QUEUE_SIZE) * 2, head);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    mem.write16(RING.driver + VIRTQ_AVAIL_IDX, this.availIdx);
    await this.notify(queue);
  }
  /** Set the split ring's avail idx to `idx` (for a planted decrement) and notify. */
  async setAvailIdx(idx: number, queue = 0): Promise<void> {
    this.machine.memory.write16(RING.driver + VIRTQ_AVAIL_IDX, idx);
    this.availIdx = idx;
    await this.notify(queue);
  }
  /** Write one packed descriptor at slot `slot` (first wrap: AVAIL set, USED clear) and notify. */
  async postPacked(slot: number, d: Desc, id = slot, queue = 0): Promise<void> {
    this.writePacked(slot, d, id);
    await this.notify(queue);
  }
  /**
   * Write one packed descriptor at slot `slot` of the ring (or of an indirect table at `table`,
   * flags as given); in the ring, AVAIL is set for the first wrap.
   */
  writePacked(slot: number, d: Desc, id = slot, table?: number): void {
    const mem = this.machine.memory;
    const at = (table ?? RING.desc) + slot * PVIRTQ_DESC_SIZE;
    const [lo, hi] = splitU64(d.addr);
    mem.write32(at, lo);
    mem.write32(at + 4, hi);
    mem.write32(at + PVIRTQ_DESC_LEN, d.len);
    mem.write16(at + PVIRTQ_DESC_ID, id);
    mem.write16(at + PVIRTQ_DESC_FLAGS, table === undefined ? d.flags | VIRTQ_DESC_F_AVAIL : d.flags);
  }
}
