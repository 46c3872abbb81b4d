/**
 * The legacy virtio-pci transport, device side (spec 4.1.4.10, virtio 0.9.5): the header in I/O
 * BAR0, over the same {@link DeviceCore} as the modern transport (status, features and queues are
 * the core's; this file only decodes registers).
 *
 *   0  host features (low 32 bits, RO)     4  guest features (low 32 bits)   8  queue PFN
 *   12 queue size (RO: the maximum)        14 queue select                   16 queue notify
 *   18 device status                       19 ISR (a read clears it)
 *   20 config vector, 22 queue vector: only while MSI-X is enabled
 *   device-specific configuration from 20, or from 24 while MSI-X is enabled
 *
 * Legacy semantics: there is no FEATURES_OK step (features are taken as written, within the offer)
 * and DRIVER_OK activates; a queue lives at PFN * 4096 in the legacy layout (2.7.2: descriptors,
 * then the available ring, then the used ring at the next 4096 boundary); PFN 0 takes it back.
 * As in QEMU, an access is decoded by its offset alone: a read at a register's first byte returns
 * the register truncated to the access width, anything else in the header reads 0 and writes
 * nothing; configuration beyond the device's reads all-ones.
 */

import { splitU64 } from '../../memory/guest-memory.js';
import type { BarRegion } from '../../pci/bar-region.js';
import type { BarDescriptor } from '../../pci/function.js';
import { ALL_ONES, truncate, type AccessSize } from '../../memory/access-size.js';
import { PCI_BAR_MIN_IO_SIZE } from '../../spec/pci-header.js';
import { bit, VIRTIO_F_ANY_LAYOUT } from '../../spec/features.js';
import { descTableSize, legacyUsedOffset } from '../../spec/ring.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FAILED,
} from '../../spec/status.js';
import {
  VIRTIO_MSI_CONFIG_VECTOR,
  VIRTIO_MSI_QUEUE_VECTOR,
  VIRTIO_PCI_CONFIG_OFF_MSIX,
  VIRTIO_PCI_CONFIG_OFF_NO_MSIX,
  VIRTIO_PCI_GUEST_FEATURES,
  VIRTIO_PCI_HOST_FEATURES,
  VIRTIO_PCI_ISR,
  VIRTIO_PCI_QUEUE_ADDR_SHIFT,
  VIRTIO_PCI_QUEUE_NOTIFY,
  VIRTIO_PCI_QUEUE_NUM,
  VIRTIO_PCI_QUEUE_PFN,
  VIRTIO_PCI_QUEUE_SEL,
  VIRTIO_PCI_STATUS,
  VIRTIO_PCI_VRING_ALIGN,
} from '../../spec/virtio-pci.js';
import type { DeviceCore } from '../../core/device-core.js';
import type { InterfaceRules } from '../../core/interface-rules.js';
import type { RingArea } from '../../core/virtqueue-config.js';
import type { PciNotifications } from './pci-notifications.js';
import { DRIVER_REQUIREMENTS as R } from '../../spec/driver-requirements.js';
import { featureBits } from '../../spec/features.js';
import type { SnapshotReader } from '../../snapshot/snapshot-reader.js';
import { struct, u16, type SnapshotStruct } from '../../snapshot/snapshot-value.js';

/** The BAR holding the legacy header (spec 4.1.4.10: "the first I/O region"). */
export const LEGACY_BAR = 0;

/**
 * Legacy initialisation (spec 3.1.2 / 0.9.5): ACKNOWLEDGE, DRIVER, then DRIVER_OK once features and
 * queues are set; no FEATURES_OK, and VERSION_1 is not required (it cannot even be seen).
 * VIRTIO_F_ANY_LAYOUT is offered here only (6.3: transitional devices MUST offer it; it means nothing
 * on the modern interface, where the layout is always free): every device model parses its chains
 * as byte ranges, whatever the descriptors (Message Framing). A legacy driver may use the device
 * before DRIVER_OK (3.1.2): its first notification once queues can be set up starts the device.
 */
export const LEGACY_RULES: InterfaceRules = {
  statusSteps: [
    { bit: VIRTIO_CONFIG_S_ACKNOWLEDGE, requires: 0 },
    { bit: VIRTIO_CONFIG_S_DRIVER, requires: VIRTIO_CONFIG_S_ACKNOWLEDGE },
    { bit: VIRTIO_CONFIG_S_DRIVER_OK, requires: VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER },
    { bit: VIRTIO_CONFIG_S_FAILED, requires: 0 },
  ],
  requiredFeatures: 0n,
  interfaceFeatures: bit(VIRTIO_F_ANY_LAYOUT),
  usableBeforeDriverOk: true,
};

/**
 * The I/O BAR the header needs: a power of two covering the header and the device config, the
 * header with its MSI-X registers when the function has MSI-X (as QEMU sizes it).
 */
export function legacyBarDescriptor(deviceConfigSize: number, hasMsix: boolean): BarDescriptor {
  let size = PCI_BAR_MIN_IO_SIZE;
  while (size < legacyConfigOffset(hasMsix) + deviceConfigSize) size *= 2;
  return { kind: 'io', size, is64: false, prefetchable: false };
}

/** Where device configuration starts in the header (4.1.4.10). */
export function legacyConfigOffset(msixEnabled: boolean): number {
  return msixEnabled ? VIRTIO_PCI_CONFIG_OFF_MSIX : VIRTIO_PCI_CONFIG_OFF_NO_MSIX;
}

const PAGE = 2 ** VIRTIO_PCI_QUEUE_ADDR_SHIFT;

/** See the file comment. */
export class LegacyTransport {
  private queueSelect = 0;
  /** BAR0 contents, to be served by the function. */
  readonly region: BarRegion;

  constructor(
    private readonly core: DeviceCore,
    /** The ISR and the MSI-X vectors. */
    private readonly notifications: PciNotifications,
    /** Whether MSI-X is enabled on the function right now (moves device config, shows the vector registers). */
    private readonly msixEnabled: () => boolean,
  ) {
    core.onReset(() => (this.queueSelect = 0));
    this.region = { read: this.read.bind(this), write: this.write.bind(this) };
  }

  /** The queue select register (docs/snapshots.md). */
  snapshot(): SnapshotStruct {
    return struct({ queueSelect: u16(this.queueSelect) });
  }

  /** Check `r` (SnapshotError otherwise) and return what applies it. */
  prepareRestore(r: SnapshotReader): () => void {
    const queueSelect = r.u16('queueSelect');
    return () => (this.queueSelect = queueSelect);
  }

  private get configOffset(): number {
    return legacyConfigOffset(this.msixEnabled());
  }

  /**
   * Where the device configuration starts now, and its length: with {@link read} and {@link write}
   * this is a member's legacy interface as an SR-IOV group owner reaches it (device/admin/legacy-interface.ts).
   */
  get deviceConfigOffset(): number {
    return this.configOffset;
  }
  get deviceConfigSize(): number {
    return this.core.device.configSize;
  }

  /** A BAR0 read (see the file comment). */
  read(offset: number, size: AccessSize): number {
    const core = this.core;
    const configOffset = this.configOffset;
    if (offset >= configOffset) return core.readDeviceConfig(offset - configOffset, size) ?? ALL_ONES[size];
    const q = core.queues[this.queueSelect];
    let value: number;
    switch (offset) {
      case VIRTIO_PCI_HOST_FEATURES:
        value = core.deviceFeatureWord(0);
        break;
      case VIRTIO_PCI_GUEST_FEATURES:
        value = core.driverFeatureWord(0);
        break;
      case VIRTIO_PCI_QUEUE_PFN:
        value = q?.enabled ? Math.floor(q.ringAddress('desc') / PAGE) : 0;
        break;
      case VIRTIO_PCI_QUEUE_NUM:
        value = q?.size ?? 0;
        break;
      case VIRTIO_PCI_QUEUE_SEL:
        value = this.queueSelect;
        break;
      case VIRTIO_PCI_STATUS:
        value = core.status;
        break;
      case VIRTIO_PCI_ISR:
        value = this.notifications.readIsr();
        break;
      case VIRTIO_MSI_CONFIG_VECTOR:
        value = this.notifications.readConfigVector();
        break;
      case VIRTIO_MSI_QUEUE_VECTOR:
        value = this.notifications.readQueueVector(this.queueSelect);
        break;
      default:
        value = 0;
    }
    return truncate(value, size);
  }

  /** A BAR0 write. */
  write(offset: number, size: AccessSize, written: number): void {
    const core = this.core;
    const configOffset = this.configOffset;
    const value = truncate(written, size);
    if (offset >= configOffset) {
      core.writeDeviceConfig(offset - configOffset, size, value);
      return;
    }
    if (core.audit !== undefined) this.auditWrite(offset, value);
    switch (offset) {
      case VIRTIO_PCI_GUEST_FEATURES:
        // Only bits offered are taken (the legacy interface has no FEATURES_OK to refuse others).
        core.setDriverFeatureWord(0, value & core.deviceFeatureWord(0));
        break;
      case VIRTIO_PCI_QUEUE_PFN:
        this.setQueuePfn(this.queueSelect, value);
        break;
      case VIRTIO_PCI_QUEUE_SEL:
        this.queueSelect = value & 0xffff;
        break;
      case VIRTIO_PCI_QUEUE_NOTIFY:
        // The whole written value names the queue: 0x10000 in a 4-byte write is no queue (as QEMU).
        if (value < core.queues.length) core.notify(value);
        break;
      case VIRTIO_PCI_STATUS:
        core.writeStatus(value & 0xff);
        break;
      case VIRTIO_MSI_CONFIG_VECTOR:
        this.notifications.setConfigVector(value & 0xffff);
        break;
      case VIRTIO_MSI_QUEUE_VECTOR:
        this.notifications.setQueueVector(this.queueSelect, value & 0xffff);
        break;
      default:
      // host features and queue size are read-only, the ISR is read-clear; other offsets are not registers.
    }
  }

  /** Audit: the legacy header's read-only registers, features beyond the offer, vectors read back. */
  private auditWrite(offset: number, value: number): void {
    const audit = this.core.audit!;
    switch (offset) {
      case VIRTIO_PCI_HOST_FEATURES:
      case VIRTIO_PCI_QUEUE_NUM:
      case VIRTIO_PCI_ISR:
        audit(R.legacyReadOnly, `read-only legacy register at offset ${offset} written`);
        break;
      case VIRTIO_PCI_GUEST_FEATURES: {
        // The register keeps only offered bits, so the audit looks at what was written.
        const unoffered = BigInt(value >>> 0) & ~BigInt(this.core.deviceFeatureWord(0));
        if (unoffered !== 0n)
          audit(R.featuresOnlyOffered, `accepted feature bits ${featureBits(unoffered).join(' ')} that were not offered`);
        break;
      }
      case VIRTIO_PCI_STATUS:
        this.notifications.checkVectorVerified();
        break;
      default:
    }
  }

  /** PFN p puts the queue's legacy ring area at p * 4096 and makes it live; 0 takes it back. */
  private setQueuePfn(index: number, pfn: number): void {
    const core = this.core;
    const q = core.queues[index];
    if (q === undefined) return;
    core.disableQueue(index);
    if (pfn === 0) return;
    // pfn < 2^32, so the area start is below 2^44: exact.
    const desc = pfn * PAGE;
    const areas: [RingArea, number][] = [
      ['desc', desc],
      ['driver', desc + descTableSize(q.size)],
      ['device', desc + legacyUsedOffset(q.size, VIRTIO_PCI_VRING_ALIGN)],
    ];
    for (const [area, addr] of areas) {
      const [lo, hi] = splitU64(addr);
      core.setQueueRingHalf(index, area, 0, lo);
      core.setQueueRingHalf(index, area, 1, hi);
    }
    core.enableQueue(index);
  }
}
