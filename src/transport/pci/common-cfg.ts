/**
 * The common configuration structure, device side (4.1.4.3: struct virtio_pci_common_cfg): feature
 * words by select, config_msix_vector, num_queues, device_status, config_generation and the
 * selected queue's fields, decoded onto the {@link DeviceCore} and {@link PciNotifications}.
 *
 * As QEMU 7.2: a (naturally aligned) access is decoded by its offset alone. A read at a field's
 * first byte returns the field's value truncated to the access width (nothing from neighbouring
 * fields); a write there sets the field from the written value (only the bytes written, as wide as
 * the field). Any other offset reads 0 and ignores writes.
 */

import { truncate, type AccessSize } from '../../memory/access-size.js';
import type { BarRegion } from '../../pci/bar-region.js';
import {
  VIRTIO_PCI_COMMON_ADM_Q_IDX,
  VIRTIO_PCI_COMMON_ADM_Q_NUM,
  VIRTIO_PCI_COMMON_CFGGENERATION,
  VIRTIO_PCI_COMMON_DF,
  VIRTIO_PCI_COMMON_DFSELECT,
  VIRTIO_PCI_COMMON_GF,
  VIRTIO_PCI_COMMON_GFSELECT,
  VIRTIO_PCI_COMMON_MSIX,
  VIRTIO_PCI_COMMON_NUMQ,
  VIRTIO_PCI_COMMON_Q_AVAILHI,
  VIRTIO_PCI_COMMON_Q_AVAILLO,
  VIRTIO_PCI_COMMON_Q_DESCHI,
  VIRTIO_PCI_COMMON_Q_DESCLO,
  VIRTIO_PCI_COMMON_Q_ENABLE,
  VIRTIO_PCI_COMMON_Q_MSIX,
  VIRTIO_PCI_COMMON_Q_NDATA,
  VIRTIO_PCI_COMMON_Q_NOFF,
  VIRTIO_PCI_COMMON_Q_RESET,
  VIRTIO_PCI_COMMON_Q_SELECT,
  VIRTIO_PCI_COMMON_Q_SIZE,
  VIRTIO_PCI_COMMON_Q_USEDHI,
  VIRTIO_PCI_COMMON_Q_USEDLO,
  VIRTIO_PCI_COMMON_STATUS,
} from '../../spec/virtio-pci.js';
import type { DeviceCore } from '../../core/device-core.js';
import type { RingArea } from '../../core/virtqueue-config.js';
import { queueNotifConfigData, queueNotifyOff } from './notify-cfg.js';
import { VIRTIO_F_NOTIF_CONFIG_DATA, VIRTIO_F_RING_PACKED, hasFeature } from '../../spec/features.js';
import type { PciNotifications } from './pci-notifications.js';
import type { SnapshotReader } from '../../snapshot/snapshot-reader.js';
import { struct, u16, u32, type SnapshotStruct } from '../../snapshot/snapshot-value.js';
import { DRIVER_REQUIREMENTS as R } from '../../spec/driver-requirements.js';
import { SPLIT_RING } from '../../queue/ring-format.js';

/** The common configuration block of BAR4; its select registers return to 0 on every device reset. */
export class CommonCfg implements BarRegion {
  /** device_feature_select, driver_feature_select, queue_select. */
  private dfselect = 0;
  private gfselect = 0;
  private queueSelect = 0;
  /** Audit: a reset was written and device_status has not read 0 since (4.1.4.3.2). */
  private resetUnconfirmed = false;
  /** Audit: queues whose queue_reset was written 1 and has not read 0 since. */
  private readonly queueResetsUnconfirmed = new Set<number>();

  constructor(
    private readonly core: DeviceCore,
    /** The ISR and the MSI-X vectors. */
    private readonly notifications: PciNotifications,
  ) {
    core.onReset(() => {
      this.queueResetsUnconfirmed.clear();
      this.dfselect = 0;
      this.gfselect = 0;
      this.queueSelect = 0;
    });
  }

  /** The select registers (docs/snapshots.md); the audit's bookkeeping is not device state. */
  snapshot(): SnapshotStruct {
    return struct({ deviceFeatureSelect: u32(this.dfselect), driverFeatureSelect: u32(this.gfselect), queueSelect: u16(this.queueSelect) });
  }

  /** Check `r` (SnapshotError otherwise) and return what applies it. */
  prepareRestore(r: SnapshotReader): () => void {
    const dfselect = r.u32('deviceFeatureSelect');
    const gfselect = r.u32('driverFeatureSelect');
    const queueSelect = r.u16('queueSelect');
    return () => {
      this.dfselect = dfselect;
      this.gfselect = gfselect;
      this.queueSelect = queueSelect;
    };
  }

  read(offset: number, size: AccessSize): number {
    const core = this.core;
    const q = core.queueConfig(this.queueSelect);
    let value: number;
    switch (offset) {
      case VIRTIO_PCI_COMMON_DFSELECT:
        value = this.dfselect;
        break;
      case VIRTIO_PCI_COMMON_DF:
        value = core.deviceFeatureWord(this.dfselect);
        break;
      case VIRTIO_PCI_COMMON_GFSELECT:
        value = this.gfselect;
        break;
      case VIRTIO_PCI_COMMON_GF:
        value = core.driverFeatureWord(this.gfselect);
        break;
      case VIRTIO_PCI_COMMON_MSIX:
        value = this.notifications.readConfigVector();
        break;
      case VIRTIO_PCI_COMMON_NUMQ:
        // The device's own queues: an administration queue lies beyond them (4.1.4.3.1).
        value = core.queues.length;
        break;
      case VIRTIO_PCI_COMMON_STATUS:
        value = core.status;
        if (value === 0) this.resetUnconfirmed = false;
        break;
      case VIRTIO_PCI_COMMON_CFGGENERATION:
        value = core.configGeneration;
        break;
      case VIRTIO_PCI_COMMON_Q_SELECT:
        value = this.queueSelect;
        break;
      case VIRTIO_PCI_COMMON_Q_SIZE:
        value = q?.size ?? 0;
        break;
      case VIRTIO_PCI_COMMON_Q_MSIX:
        value = this.notifications.readQueueVector(this.queueSelect);
        break;
      case VIRTIO_PCI_COMMON_Q_ENABLE:
        value = q?.enabled ? 1 : 0;
        break;
      case VIRTIO_PCI_COMMON_Q_NOFF:
        // As QEMU, for any selected index: notifying a queue that does not exist does nothing.
        value = queueNotifyOff(this.queueSelect);
        break;
      case VIRTIO_PCI_COMMON_Q_DESCLO:
      case VIRTIO_PCI_COMMON_Q_DESCHI:
      case VIRTIO_PCI_COMMON_Q_AVAILLO:
      case VIRTIO_PCI_COMMON_Q_AVAILHI:
      case VIRTIO_PCI_COMMON_Q_USEDLO:
      case VIRTIO_PCI_COMMON_Q_USEDHI: {
        const [area, half] = ringHalfAt(offset);
        value = q?.ringHalf(area, half) ?? 0;
        break;
      }
      case VIRTIO_PCI_COMMON_Q_RESET:
        // 4.1.4.3.1: 1 as long as the queue reset is ongoing (old operations not yet settled).
        value = q?.resetPending ? 1 : 0;
        if (value === 0) this.queueResetsUnconfirmed.delete(this.queueSelect);
        break;
      case VIRTIO_PCI_COMMON_Q_NDATA:
        // 4.1.4.3: the field exists once VIRTIO_F_NOTIF_CONFIG_DATA is negotiated; 0 before.
        value = q !== undefined && hasFeature(core.negotiatedFeatures, VIRTIO_F_NOTIF_CONFIG_DATA) ? queueNotifConfigData(q.index) : 0;
        break;
      // Valid once VIRTIO_F_ADMIN_VQ is negotiated; 0 before, and on a device without the queue.
      case VIRTIO_PCI_COMMON_ADM_Q_IDX:
        value = core.adminQueueRange?.index ?? 0;
        break;
      case VIRTIO_PCI_COMMON_ADM_Q_NUM:
        value = core.adminQueueRange?.num ?? 0;
        break;
      default:
        value = 0;
    }
    return truncate(value, size);
  }

  write(offset: number, size: AccessSize, written: number): void {
    const core = this.core;
    const value = truncate(written, size);
    const q = this.queueSelect;
    if (core.audit !== undefined) this.auditWrite(offset, value);
    switch (offset) {
      case VIRTIO_PCI_COMMON_DFSELECT:
        this.dfselect = value;
        break;
      case VIRTIO_PCI_COMMON_GFSELECT:
        this.gfselect = value;
        break;
      case VIRTIO_PCI_COMMON_GF:
        core.setDriverFeatureWord(this.gfselect, value);
        break;
      case VIRTIO_PCI_COMMON_MSIX:
        this.notifications.setConfigVector(value & 0xffff);
        break;
      case VIRTIO_PCI_COMMON_STATUS:
        core.writeStatus(value & 0xff);
        break;
      case VIRTIO_PCI_COMMON_Q_SELECT:
        this.queueSelect = value & 0xffff;
        break;
      case VIRTIO_PCI_COMMON_Q_SIZE:
        core.setQueueSize(q, value & 0xffff);
        break;
      case VIRTIO_PCI_COMMON_Q_MSIX:
        this.notifications.setQueueVector(q, value & 0xffff);
        break;
      case VIRTIO_PCI_COMMON_Q_ENABLE:
        // 4.1.4.3.2: the driver MUST NOT write 0; only 1 enables.
        if ((value & 0xffff) === 1) core.enableQueue(q);
        break;
      case VIRTIO_PCI_COMMON_Q_RESET:
        // 2.6.1.1: 1 resets the selected queue (only with RING_RESET negotiated).
        if ((value & 0xffff) === 1) core.resetQueue(q);
        break;
      case VIRTIO_PCI_COMMON_Q_DESCLO:
      case VIRTIO_PCI_COMMON_Q_DESCHI:
      case VIRTIO_PCI_COMMON_Q_AVAILLO:
      case VIRTIO_PCI_COMMON_Q_AVAILHI:
      case VIRTIO_PCI_COMMON_Q_USEDLO:
      case VIRTIO_PCI_COMMON_Q_USEDHI: {
        const [area, half] = ringHalfAt(offset);
        core.setQueueRingHalf(q, area, half, value);
        break;
      }
      default:
      // device_feature, num_queues, config_generation, queue_notify_off, queue_notif_config_data and
      // the fields of features not offered are read-only; other offsets are not fields.
    }
  }

  /** Audit: the driver rules of 4.1.4.3.2 a common configuration write can break (the core checks the state rules). */
  private auditWrite(offset: number, value: number): void {
    const audit = this.core.audit!;
    const q = this.queueSelect;
    const readOnly = READ_ONLY_FIELDS.get(offset);
    if (readOnly !== undefined) audit(R.commonReadOnly, `${readOnly} written`);
    switch (offset) {
      case VIRTIO_PCI_COMMON_STATUS:
        this.notifications.checkVectorVerified();
        if ((value & 0xff) === 0) this.resetUnconfirmed = true;
        else if (this.resetUnconfirmed)
          audit(R.commonResetWait, `device_status written 0x${(value & 0xff).toString(16)} before a read of 0 after the reset`);
        break;
      case VIRTIO_PCI_COMMON_Q_SIZE: {
        const size = value & 0xffff;
        if (hasFeature(this.core.driverFeatures, VIRTIO_F_RING_PACKED)) {
          if (size === 0) audit(R.commonQueueSizeNonzero, `queue_size of queue ${q} written 0 on a packed ring`);
        } else if (!SPLIT_RING.isQueueSize(size)) audit(R.commonQueueSizePow2, `queue_size of queue ${q} written ${size}`);
        break;
      }
      case VIRTIO_PCI_COMMON_Q_ENABLE:
        if ((value & 0xffff) === 0) audit(R.commonQueueEnableZero, `queue_enable of queue ${q} written 0`);
        else if (this.queueResetsUnconfirmed.has(q))
          audit(R.commonQueueResetWait, `queue ${q} enabled before queue_reset read 0 after its reset`);
        break;
      case VIRTIO_PCI_COMMON_Q_RESET:
        if ((value & 0xffff) === 1) this.queueResetsUnconfirmed.add(q);
        break;
      default:
    }
  }
}

/** Common configuration fields the driver only reads (4.1.4.3.2), by offset. */
const READ_ONLY_FIELDS: ReadonlyMap<number, string> = new Map([
  [VIRTIO_PCI_COMMON_DF, 'device_feature'],
  [VIRTIO_PCI_COMMON_NUMQ, 'num_queues'],
  [VIRTIO_PCI_COMMON_CFGGENERATION, 'config_generation'],
  [VIRTIO_PCI_COMMON_Q_NOFF, 'queue_notify_off'],
  [VIRTIO_PCI_COMMON_Q_NDATA, 'queue_notif_config_data'],
]);

/** Which ring area and half a queue address register holds. */
function ringHalfAt(offset: number): [RingArea, 0 | 1] {
  switch (offset) {
    case VIRTIO_PCI_COMMON_Q_DESCLO:
      return ['desc', 0];
    case VIRTIO_PCI_COMMON_Q_DESCHI:
      return ['desc', 1];
    case VIRTIO_PCI_COMMON_Q_AVAILLO:
      return ['driver', 0];
    case VIRTIO_PCI_COMMON_Q_AVAILHI:
      return ['driver', 1];
    case VIRTIO_PCI_COMMON_Q_USEDLO:
      return ['device', 0];
    default:
      return ['device', 1];
  }
}
