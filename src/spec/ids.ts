/**
 * Virtio device type IDs (spec 5 "Device Types", table of device IDs) and the PCI IDs derived from
 * them (spec 4.1.2 "PCI Device Discovery").
 */

export const VIRTIO_ID_NET = 1;
export const VIRTIO_ID_BLOCK = 2;
export const VIRTIO_ID_CONSOLE = 3;
export const VIRTIO_ID_RNG = 4;
export const VIRTIO_ID_BALLOON = 5;
export const VIRTIO_ID_IOMEM = 6;
export const VIRTIO_ID_RPMSG = 7;
export const VIRTIO_ID_SCSI = 8;
export const VIRTIO_ID_9P = 9;
export const VIRTIO_ID_RPROC_SERIAL = 11;
export const VIRTIO_ID_CAIF = 12;
export const VIRTIO_ID_GPU = 16;
export const VIRTIO_ID_INPUT = 18;
export const VIRTIO_ID_VSOCK = 19;
export const VIRTIO_ID_CRYPTO = 20;
export const VIRTIO_ID_IOMMU = 23;
export const VIRTIO_ID_MEM = 24;
export const VIRTIO_ID_SOUND = 25;
export const VIRTIO_ID_FS = 26;
export const VIRTIO_ID_PMEM = 27;
export const VIRTIO_ID_MAC80211_HWSIM = 29;
export const VIRTIO_ID_SCMI = 32;
export const VIRTIO_ID_I2C_ADAPTER = 34;
export const VIRTIO_ID_GPIO = 41;

/** Human names of device types, as the spec's device-ID table calls them. */
export const VIRTIO_DEVICE_NAMES: ReadonlyMap<number, string> = new Map([
  [VIRTIO_ID_NET, 'network card'],
  [VIRTIO_ID_BLOCK, 'block device'],
  [VIRTIO_ID_CONSOLE, 'console'],
  [VIRTIO_ID_RNG, 'entropy source'],
  [VIRTIO_ID_BALLOON, 'memory ballooning (traditional)'],
  [VIRTIO_ID_IOMEM, 'ioMemory'],
  [VIRTIO_ID_RPMSG, 'rpmsg'],
  [VIRTIO_ID_SCSI, 'SCSI host'],
  [VIRTIO_ID_9P, '9P transport'],
  [VIRTIO_ID_RPROC_SERIAL, 'rproc serial'],
  [VIRTIO_ID_CAIF, 'virtio CAIF'],
  [VIRTIO_ID_GPU, 'GPU device'],
  [VIRTIO_ID_INPUT, 'input device'],
  [VIRTIO_ID_VSOCK, 'socket device'],
  [VIRTIO_ID_CRYPTO, 'crypto device'],
  [VIRTIO_ID_IOMMU, 'IOMMU device'],
  [VIRTIO_ID_MEM, 'memory device'],
  [VIRTIO_ID_SOUND, 'sound device'],
  [VIRTIO_ID_FS, 'file system device'],
  [VIRTIO_ID_PMEM, 'PMEM device'],
  [VIRTIO_ID_MAC80211_HWSIM, 'mac80211 hwsim wireless simulation device'],
  [VIRTIO_ID_SCMI, 'SCMI device'],
  [VIRTIO_ID_I2C_ADAPTER, 'I2C adapter'],
  [VIRTIO_ID_GPIO, 'GPIO device'],
]);

/** Spec 4.1.2: every virtio PCI function has this vendor ID. */
export const VIRTIO_PCI_VENDOR_ID = 0x1af4;
/** Spec 4.1.2: modern device ID = 0x1040 + virtio device ID. */
export const VIRTIO_PCI_MODERN_DEVICE_ID_BASE = 0x1040;
/** Spec 4.1.2: the range a driver may treat as virtio (legacy/transitional ones and modern ones). */
export const VIRTIO_PCI_DEVICE_ID_MIN = 0x1000;
export const VIRTIO_PCI_DEVICE_ID_MAX = 0x107f;
/** Spec 4.1.2: transitional devices use IDs in this range. */
export const VIRTIO_PCI_TRANSITIONAL_ID_MIN = 0x1000;
export const VIRTIO_PCI_TRANSITIONAL_ID_MAX = 0x103f;

/**
 * Spec 4.1.2.1 "Legacy Interfaces: A Note on PCI Device Discovery": the transitional PCI device ID of
 * each device type that has one. A table, not a formula: the spec lists exactly these.
 */
export const VIRTIO_PCI_TRANSITIONAL_DEVICE_IDS: ReadonlyMap<number, number> = new Map([
  [VIRTIO_ID_NET, 0x1000],
  [VIRTIO_ID_BLOCK, 0x1001],
  [VIRTIO_ID_BALLOON, 0x1002],
  [VIRTIO_ID_CONSOLE, 0x1003],
  [VIRTIO_ID_SCSI, 0x1004],
  [VIRTIO_ID_RNG, 0x1005],
  [VIRTIO_ID_9P, 0x1009],
]);

/** The virtio device type a transitional PCI device ID stands for, or undefined. */
export function deviceTypeOfTransitionalId(pciDeviceId: number): number | undefined {
  for (const [type, id] of VIRTIO_PCI_TRANSITIONAL_DEVICE_IDS) if (id === pciDeviceId) return type;
  return undefined;
}

/** Human name of a virtio device type, e.g. "block device", or "unknown type N". */
export function deviceTypeName(type: number): string {
  return VIRTIO_DEVICE_NAMES.get(type) ?? `unknown type ${type}`;
}
