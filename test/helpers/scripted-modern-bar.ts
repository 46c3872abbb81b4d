/**
 * TEST DOUBLE, not a device: a scripted BAR4 for the QEMU modern layout (common 0x0, ISR 0x1000,
 * device 0x2000, notify 0x3000) behind FakePciBus. It stores what is written, answers
 * device_feature per select and queue_size / queue_notify_off per queue_select, and can be told to
 * misbehave (status stuck, vectors refused, odd queue sizes), so tests can watch a driver's register
 * accesses and feed it hostile values. Nothing is ever processed.
 */

import { joinU64 } from '../../src/memory/guest-memory.js';
import type { AccessSize } from '../../src/memory/access-size.js';
import {
  VIRTIO_PCI_COMMON_DF,
  VIRTIO_PCI_COMMON_DFSELECT,
  VIRTIO_PCI_COMMON_MSIX,
  VIRTIO_PCI_COMMON_NUMQ,
  VIRTIO_PCI_COMMON_Q_AVAILLO,
  VIRTIO_PCI_COMMON_Q_DESCLO,
  VIRTIO_PCI_COMMON_Q_ENABLE,
  VIRTIO_PCI_COMMON_Q_MSIX,
  VIRTIO_PCI_COMMON_Q_NDATA,
  VIRTIO_PCI_COMMON_Q_NOFF,
  VIRTIO_PCI_COMMON_Q_RESET,
  VIRTIO_PCI_COMMON_Q_SELECT,
  VIRTIO_PCI_COMMON_Q_SIZE,
  VIRTIO_PCI_COMMON_Q_USEDLO,
  VIRTIO_PCI_COMMON_STATUS,
  VIRTIO_MSI_NO_VECTOR,
} from '../../src/spec/virtio-pci.js';
import type { RegionHandler } from '../../src/testing/fake-pci-bus.js';

export class ScriptedBar4 implements RegionHandler {
  /** Last value written at each BAR offset. */
  readonly regs = new Map<number, number>();
  /** device_feature for each device_feature_select. */
  deviceFeatureWords: number[] = [];
  numQueues = 0;
  /** queue_size per queue, as the device offers it (a driver write replaces it). */
  readonly queueSize = new Map<number, number>();
  readonly queueNotifyOff = new Map<number, number>();
  /** queue_notif_config_data per queue. */
  readonly queueNotifyData = new Map<number, number>();
  /** After queue_reset = 1: how many reads of queue_reset return 1 before 0 (Infinity: stuck). */
  queueResetReads = 0;
  /** queue_reset reads of 1 left for the queue being reset. */
  private resetReadsLeft = 0;
  /** What device_status reads as (undefined: what was written). */
  stuckStatus: number | undefined;
  /** Read back VIRTIO_MSI_NO_VECTOR from both vector fields. */
  refuseVectors = false;
  /** Ignore the driver's queue_size writes: the size read stays the one offered. */
  keepQueueSize = false;
  /** Ring addresses per queue as written when the driver enabled it (queue_enable 1). */
  readonly enabledQueues = new Map<number, { desc: number; driver: number; device: number }>();

  private get selected(): number {
    return this.regs.get(VIRTIO_PCI_COMMON_Q_SELECT) ?? 0;
  }

  read(offset: number, _size: AccessSize): number {
    switch (offset) {
      case VIRTIO_PCI_COMMON_DF:
        return this.deviceFeatureWords[this.regs.get(VIRTIO_PCI_COMMON_DFSELECT) ?? 0] ?? 0;
      case VIRTIO_PCI_COMMON_STATUS:
        return this.stuckStatus ?? this.regs.get(offset) ?? 0;
      case VIRTIO_PCI_COMMON_NUMQ:
        return this.numQueues;
      case VIRTIO_PCI_COMMON_Q_SIZE:
        return this.queueSize.get(this.selected) ?? 0;
      case VIRTIO_PCI_COMMON_Q_NOFF:
        return this.queueNotifyOff.get(this.selected) ?? 0;
      case VIRTIO_PCI_COMMON_Q_NDATA:
        return this.queueNotifyData.get(this.selected) ?? 0;
      case VIRTIO_PCI_COMMON_Q_RESET:
        if (this.resetReadsLeft === 0) return 0;
        this.resetReadsLeft--;
        return 1;
      case VIRTIO_PCI_COMMON_MSIX:
      case VIRTIO_PCI_COMMON_Q_MSIX:
        return this.refuseVectors ? VIRTIO_MSI_NO_VECTOR : (this.regs.get(offset) ?? 0);
      default:
        return this.regs.get(offset) ?? 0;
    }
  }

  write(offset: number, _size: AccessSize, value: number): void {
    this.regs.set(offset, value);
    if (offset === VIRTIO_PCI_COMMON_Q_RESET && value === 1) {
      this.resetReadsLeft = this.queueResetReads;
      this.regs.set(VIRTIO_PCI_COMMON_Q_ENABLE, 0);
    }
    if (offset === VIRTIO_PCI_COMMON_Q_SIZE && !this.keepQueueSize) this.queueSize.set(this.selected, value);
    if (offset === VIRTIO_PCI_COMMON_Q_ENABLE && value === 1) {
      const u64 = (lo: number): number => joinU64(this.regs.get(lo) ?? 0, this.regs.get(lo + 4) ?? 0);
      this.enabledQueues.set(this.selected, {
        desc: u64(VIRTIO_PCI_COMMON_Q_DESCLO),
        driver: u64(VIRTIO_PCI_COMMON_Q_AVAILLO),
        device: u64(VIRTIO_PCI_COMMON_Q_USEDLO),
      });
    }
  }
}
