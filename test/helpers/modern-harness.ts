/**
 * A modern virtio-pci function under test, driven synchronously through its PciFunction face the
 * way an emulator would: config accesses, BAR4 accesses at the spec's register offsets, and a
 * record of what the function did to its host (INTx levels, MSI messages).
 */

import type { VirtioDevice } from '../../src/core/virtio-device.js';
import { ArrayGuestMemory } from '../../src/memory/guest-memory.js';
import type { DeviceHost } from '../../src/pci/function.js';
import type { AccessSize } from '../../src/memory/access-size.js';
import { bit } from '../../src/spec/features.js';
import { PCI_BASE_ADDRESS_0, PCI_COMMAND, PCI_COMMAND_MEMORY } from '../../src/spec/pci.js';
import { VIRTIO_CONFIG_S_ACKNOWLEDGE, VIRTIO_CONFIG_S_DRIVER, VIRTIO_CONFIG_S_FEATURES_OK } from '../../src/spec/status.js';
import {
  VIRTIO_PCI_COMMON_GF,
  VIRTIO_PCI_COMMON_GFSELECT,
  VIRTIO_PCI_COMMON_Q_AVAILHI,
  VIRTIO_PCI_COMMON_Q_AVAILLO,
  VIRTIO_PCI_COMMON_Q_DESCHI,
  VIRTIO_PCI_COMMON_Q_DESCLO,
  VIRTIO_PCI_COMMON_Q_ENABLE,
  VIRTIO_PCI_COMMON_Q_SELECT,
  VIRTIO_PCI_COMMON_Q_SIZE,
  VIRTIO_PCI_COMMON_Q_USEDHI,
  VIRTIO_PCI_COMMON_Q_USEDLO,
  VIRTIO_PCI_COMMON_STATUS,
} from '../../src/spec/virtio-pci.js';
import { VIRTIO_F_VERSION_1 } from '../../src/spec/features.js';
import { splitU64 } from '../../src/memory/guest-memory.js';
import {
  MODERN_BAR,
  MODERN_COMMON_OFFSET,
  MODERN_DEVICE_OFFSET,
  MODERN_ISR_OFFSET,
  MODERN_NOTIFY_OFFSET,
} from '../../src/transport/pci/modern-device.js';
import { VirtioPciFunction } from '../../src/transport/pci/virtio-pci-function.js';
import { LoopbackDevice, type LoopbackOptions } from './loopback-device.js';

/** Where the harness programs BAR4 (above 4 GiB, so the high half matters). */
export const HARNESS_BAR4_BASE = 0x8_0000_0000;

export interface Ring {
  readonly size: number;
  readonly descAddr: number;
  readonly availAddr: number;
  readonly usedAddr: number;
}

/** Over a {@link LoopbackDevice} built from the options, or over `device` when given. */
export class ModernHarness<D extends VirtioDevice = LoopbackDevice> {
  readonly memory: ArrayGuestMemory;
  readonly device: D;
  readonly fn: VirtioPciFunction;
  /** Every level the function drove its INTx pin to, in order. */
  readonly intx: boolean[] = [];
  readonly msi: { address: number; data: number }[] = [];

  constructor(options: LoopbackOptions & { memory?: ArrayGuestMemory; packed?: boolean } = {}, device?: D) {
    this.memory = options.memory ?? new ArrayGuestMemory(1 << 20);
    // Without `device`, D is the default LoopbackDevice.
    this.device = device ?? (new LoopbackDevice(options) as VirtioDevice as D);
    const host: DeviceHost = {
      memory: this.memory,
      sendMsi: (address, data) => this.msi.push({ address, data }),
      setIntx: (level) => this.intx.push(level),
    };
    this.fn = new VirtioPciFunction(this.device, host, { packed: options.packed ?? false });
  }

  /** Program BAR4 and enable memory decoding, as firmware would. */
  enableBar(): this {
    const [lo, hi] = splitU64(HARNESS_BAR4_BASE);
    this.fn.configWrite(PCI_BASE_ADDRESS_0 + 4 * MODERN_BAR, 4, lo);
    this.fn.configWrite(PCI_BASE_ADDRESS_0 + 4 * MODERN_BAR + 4, 4, hi);
    this.fn.configWrite(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    return this;
  }

  common(offset: number, size: AccessSize): number {
    return this.fn.barRead(MODERN_BAR, MODERN_COMMON_OFFSET + offset, size);
  }
  setCommon(offset: number, size: AccessSize, value: number): void {
    this.fn.barWrite(MODERN_BAR, MODERN_COMMON_OFFSET + offset, size, value);
  }
  isr(): number {
    return this.fn.barRead(MODERN_BAR, MODERN_ISR_OFFSET, 1);
  }
  deviceConfig(offset: number, size: AccessSize): number {
    return this.fn.barRead(MODERN_BAR, MODERN_DEVICE_OFFSET + offset, size);
  }
  setDeviceConfig(offset: number, size: AccessSize, value: number): void {
    this.fn.barWrite(MODERN_BAR, MODERN_DEVICE_OFFSET + offset, size, value);
  }
  notify(offset: number, size: AccessSize, value: number): void {
    this.fn.barWrite(MODERN_BAR, MODERN_NOTIFY_OFFSET + offset, size, value);
  }
  get status(): number {
    return this.common(VIRTIO_PCI_COMMON_STATUS, 1);
  }
  setStatus(value: number): void {
    this.setCommon(VIRTIO_PCI_COMMON_STATUS, 1, value);
  }

  /** Write the driver features, all words. */
  setDriverFeatures(features: bigint): void {
    for (let sel = 0; sel < 4; sel++) {
      this.setCommon(VIRTIO_PCI_COMMON_GFSELECT, 4, sel);
      this.setCommon(VIRTIO_PCI_COMMON_GF, 4, Number((features >> BigInt(32 * sel)) & 0xffff_ffffn));
    }
  }

  /** 3.1.1 steps 1-6: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK; returns the status read back. */
  negotiate(features: bigint = bit(VIRTIO_F_VERSION_1)): number {
    this.setStatus(0);
    this.setStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE);
    this.setStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    this.setDriverFeatures(features);
    this.setStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
    return this.status;
  }

  /** Program queue `index` with `ring` and enable it (3.1.1 step 7, 4.1.5.1.3). */
  setupQueue(index: number, ring: Ring): void {
    this.setCommon(VIRTIO_PCI_COMMON_Q_SELECT, 2, index);
    this.setCommon(VIRTIO_PCI_COMMON_Q_SIZE, 2, ring.size);
    const pairs: [number, number, number][] = [
      [VIRTIO_PCI_COMMON_Q_DESCLO, VIRTIO_PCI_COMMON_Q_DESCHI, ring.descAddr],
      [VIRTIO_PCI_COMMON_Q_AVAILLO, VIRTIO_PCI_COMMON_Q_AVAILHI, ring.availAddr],
      [VIRTIO_PCI_COMMON_Q_USEDLO, VIRTIO_PCI_COMMON_Q_USEDHI, ring.usedAddr],
    ];
    for (const [loOff, hiOff, addr] of pairs) {
      const [lo, hi] = splitU64(addr);
      this.setCommon(loOff, 4, lo);
      this.setCommon(hiOff, 4, hi);
    }
    this.setCommon(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
  }
}
