/**
 * A virtio device as a PCI function (spec 4.1.2), in one of three kinds:
 * - 'modern' (default): device ID 0x1040 + type, revision 1, the modern capabilities and BAR4
 *   (QEMU 7.2's `disable-legacy=on`), no legacy BAR;
 * - 'transitional': the spec's transitional device ID, revision 0, subsystem ID = virtio type, the
 *   legacy header in I/O BAR0 and the capabilities; the driver commits to one ({@link InterfaceArbiter});
 * - 'legacy': the transitional ID with BAR0 only, no virtio capabilities.
 * With `msixVectors` > 0 the function has MSI-X (table and PBA in BAR1, as QEMU); otherwise INTx only.
 * BAR4 is a 64-bit prefetchable memory BAR, as QEMU's; `modernBar64: false` declares it 32-bit, so
 * that the guest cannot place it above 4 GiB (for a machine that cannot reach there, as v86).
 * A device model with shared memory regions gets them in BAR2 (shared-memory-cfg.ts, 64-bit unless
 * `sharedMemoryBar64: false`); `vendorData` adds vendor data capabilities (vendor-cfg.ts).
 *
 *   const fn = new VirtioPciFunction(device, host, { mode: 'transitional', msixVectors: 2 });
 *   fn.core                                              // the transport-neutral state (status, queues)
 *   fn.notifications.peekIsr()                           // the ISR and MSI-X vectors the core's notifications map onto
 *   fn.arbiter?.ignoredAccesses                          // accesses a hybrid driver made through the other interface
 */

import type { VirtioDevice } from '../../core/virtio-device.js';
import type { AccessSize } from '../../memory/access-size.js';
import { ConfigSpace } from '../../pci/config-space.js';
import { PciEndpoint } from '../../pci/endpoint.js';
import type { DeviceHost } from '../../pci/function.js';
import { SnapshotError, UsageError } from '../../errors.js';
import { SnapshotReader } from '../../snapshot/snapshot-reader.js';
import { SNAPSHOT_FORMAT_VERSION, string, struct, u16, type FunctionSnapshot } from '../../snapshot/snapshot-value.js';
import { MsixTable, msixBarDescriptor } from '../../pci/msix.js';
import type { BarDescriptor } from '../../pci/function.js';
import {
  deviceTypeName,
  VIRTIO_ID_BLOCK,
  VIRTIO_ID_CONSOLE,
  VIRTIO_ID_NET,
  VIRTIO_PCI_MODERN_DEVICE_ID_BASE,
  VIRTIO_PCI_TRANSITIONAL_DEVICE_IDS,
  VIRTIO_PCI_VENDOR_ID,
} from '../../spec/ids.js';
import { PCI_CLASS_COMMUNICATION_OTHER, PCI_CLASS_NETWORK_ETHERNET, PCI_CLASS_OTHERS, PCI_CLASS_STORAGE_SCSI } from '../../spec/pci.js';
import { PCI_INTERRUPT_PIN_INTA } from '../../spec/pci-header.js';
import { VIRTIO_PCI_LEGACY_REVISION } from '../../spec/virtio-pci-probe.js';
import { VIRTIO_PCI_COMMON_STATUS, VIRTIO_PCI_ISR, VIRTIO_PCI_STATUS } from '../../spec/virtio-pci.js';
import { DeviceCore, type DeviceCoreOptions } from '../../core/device-core.js';
import { MODERN_STATUS_STEPS } from '../../core/device-status.js';
import type { InterfaceRules } from '../../core/interface-rules.js';
import { InterfaceArbiter } from './interface-arbiter.js';
import { IntxInterrupts } from './intx-interrupts.js';
import { LEGACY_BAR, LEGACY_RULES, LegacyTransport, legacyBarDescriptor } from './legacy-device.js';
import {
  MODERN_BAR,
  MODERN_BAR_SIZE,
  MODERN_TRANSPORT_FEATURES,
  MODERN_COMMON_OFFSET,
  MODERN_ISR_OFFSET,
  MODERN_BLOCK_SIZE,
  ModernTransport,
} from './modern-device.js';
import { MsixInterrupts } from './msix-interrupts.js';
import { PciNotifications } from './pci-notifications.js';
import type { DriverAudit } from '../../core/driver-audit.js';
import { DRIVER_REQUIREMENTS } from '../../spec/driver-requirements.js';
import { RegionMap, type BarRegion } from '../../pci/bar-region.js';
import type { LegacyNotifyRegion } from '../../core/legacy-notify-region.js';
import { GenerationLoopWatch, auditedRegion, legacyRegisterLabel, modernRegisterLabel } from './access-audit.js';
import { SHARED_MEMORY_BAR, SharedMemoryCfg } from './shared-memory-cfg.js';
import { addVendorDataCap, type VendorData } from './vendor-cfg.js';
import { capabilityWriteWatch } from './capability-write-audit.js';

/** Spec 4.1.2.1: a non-transitional device has revision ID 1 or higher. */
export const VIRTIO_PCI_MODERN_REVISION = 1;
/** QEMU's default subsystem ID (PCI_SUBDEVICE_ID_QEMU) that modern-only virtio devices keep. */
export const QEMU_PCI_SUBSYSTEM_ID = 0x1100;

/** The class code QEMU gives each virtio device type; every other type gets PCI_CLASS_OTHERS. */
const CLASS_BY_TYPE: ReadonlyMap<number, number> = new Map([
  [VIRTIO_ID_NET, PCI_CLASS_NETWORK_ETHERNET],
  [VIRTIO_ID_BLOCK, PCI_CLASS_STORAGE_SCSI],
  [VIRTIO_ID_CONSOLE, PCI_CLASS_COMMUNICATION_OTHER],
]);

/** The class code QEMU presents for a virtio device type. */
export function virtioClassCode(deviceType: number): number {
  return CLASS_BY_TYPE.get(deviceType) ?? PCI_CLASS_OTHERS;
}

/** Which interfaces the function offers (see the file comment). */
export type VirtioPciMode = 'modern' | 'transitional' | 'legacy';

/** The `kind` of a {@link VirtioPciFunction}'s snapshot. */
export const VIRTIO_PCI_FUNCTION_SNAPSHOT = 'virtio-pci-function';

/** The core's rules while the driver uses the modern interface. */
const MODERN_RULES: InterfaceRules = { statusSteps: MODERN_STATUS_STEPS };

/** Where a legacy notify area starts in BAR4: right after the four modern blocks. */
export const LEGACY_NOTIFY_AREA_OFFSET = MODERN_BAR_SIZE;

/** The BAR holding the MSI-X table and PBA (QEMU's msix_bar_idx). */
export const MSIX_BAR = 1;

export interface VirtioPciFunctionOptions {
  /** Which interfaces to offer (default 'modern'). */
  readonly mode?: VirtioPciMode;
  /** MSI-X table entries (default 0: no MSI-X, INTx only). QEMU gives a device one per queue plus one for config. */
  readonly msixVectors?: number;
  /** Subsystem ID (default {@link QEMU_PCI_SUBSYSTEM_ID} for modern, the virtio device type otherwise, spec 4.1.2.1). */
  readonly subsystemId?: number;
  /** Class code (default per device type, as QEMU). */
  readonly classCode?: number;
  /**
   * Whether the modern capabilities' BAR (BAR4) is a 64-bit memory BAR (default true, as QEMU). A
   * 32-bit one stays below 4 GiB wherever the guest puts it: the choice for a machine whose
   * physical addresses are 32 bits (v86, see V86PciAdapter.plugVirtio).
   */
  readonly modernBar64?: boolean;
  /**
   * Whether the shared memory BAR (BAR2, when the device model declares regions) is 64-bit (default
   * true); false for a machine that cannot reach above 4 GiB, as {@link modernBar64}.
   */
  readonly sharedMemoryBar64?: boolean;
  /** Vendor data capabilities (4.1.4.8) to present after the modern ones (modern and transitional only). */
  readonly vendorData?: readonly VendorData[];
  /**
   * Offer VIRTIO_F_RING_PACKED on the modern interface (QEMU's `packed=on`); default false, as QEMU.
   * The legacy interface never carries it (its feature word is 32 bits).
   */
  readonly packed?: boolean;
  /** Offer VIRTIO_F_SUSPEND on the modern interface (3.4, core/device-suspend.ts); default true. */
  readonly suspend?: boolean;
  /**
   * Audit mode: record in `audit` every driver-side statement the driver breaks, with the access
   * that broke it (core/driver-audit.ts). Default none: the function then does none of it.
   */
  readonly audit?: DriverAudit;
  /** Builds the device rings (see DeviceCoreOptions.deviceRing): a seam for conformance mutants. */
  readonly deviceRing?: DeviceCoreOptions['deviceRing'];
  /** An administration virtqueue (VIRTIO_F_ADMIN_VQ, modern interface only; see DeviceCoreOptions.adminQueue). */
  readonly adminQueue?: DeviceCoreOptions['adminQueue'];
  /**
   * The SR-IOV group's legacy notification addresses (VIRTIO_ADMIN_CMD_LEGACY_NOTIFY_INFO), placed
   * in BAR4 after the modern blocks at {@link LEGACY_NOTIFY_AREA_OFFSET}; BAR4 grows to the power of
   * two that holds them. Modern or transitional only (UsageError for 'legacy').
   */
  readonly legacyNotifyArea?: LegacyNotifyRegion;
}

/** The PCI device ID of `mode` for virtio device type `deviceType`; UsageError when the spec gives the type no transitional ID. */
export function virtioPciDeviceId(mode: VirtioPciMode, deviceType: number): number {
  if (mode === 'modern') return VIRTIO_PCI_MODERN_DEVICE_ID_BASE + deviceType;
  const id = VIRTIO_PCI_TRANSITIONAL_DEVICE_IDS.get(deviceType);
  if (id === undefined)
    throw new UsageError(`a ${deviceTypeName(deviceType)} (type ${deviceType}) has no transitional PCI device ID: only mode 'modern'`);
  return id;
}

/** See the file comment. The function is a {@link PciEndpoint}, so it is the {@link PciFunction} itself. */
export class VirtioPciFunction extends PciEndpoint {
  readonly mode: VirtioPciMode;
  readonly core: DeviceCore;
  /** The ISR and MSI-X vectors the core's notifications map onto. */
  readonly notifications: PciNotifications;
  private readonly modernTransport: ModernTransport | undefined;
  /** The BAR0 header (transitional and legacy). */
  readonly legacy: LegacyTransport | undefined;
  /** Which interface the driver committed to, and what it did through the other (transitional only). */
  readonly arbiter: InterfaceArbiter | undefined;
  /** MSI-X capability, table and PBA, when `msixVectors` > 0. */
  readonly msix: MsixTable | undefined;
  /** In audit mode: records configuration writes into virtio capabilities (capability-write-audit.ts). */
  private readonly capWriteWatch: ((offset: number, size: AccessSize, value: number) => void) | undefined;

  /** The capabilities and BAR4 (modern and transitional); UsageError on a legacy-only function. */
  get modern(): ModernTransport {
    if (this.modernTransport === undefined) throw new UsageError('a legacy-only virtio function has no modern interface');
    return this.modernTransport;
  }

  /** In audit mode the write is first checked against the virtio capabilities (capability-write-audit.ts). */
  override configWrite(offset: number, size: AccessSize, value: number): void {
    this.capWriteWatch?.(offset, size, value);
    super.configWrite(offset, size, value);
  }

  constructor(
    readonly device: VirtioDevice,
    host: DeviceHost,
    options: VirtioPciFunctionOptions = {},
  ) {
    const mode = options.mode ?? 'modern';
    const vectors = options.msixVectors ?? 0;
    const hasModern = mode !== 'legacy';
    const hasLegacy = mode !== 'modern';
    const regions = device.sharedMemoryRegions ?? [];
    // Shared memory and vendor data are capabilities: a legacy-only function has nowhere to put them.
    if (!hasModern && (regions.length > 0 || (options.vendorData?.length ?? 0) > 0))
      throw new UsageError('shared memory regions and vendor data need the modern interface: not with mode legacy');
    const notifyArea = options.legacyNotifyArea;
    if (notifyArea !== undefined && !hasModern) throw new UsageError('a legacy notify area lives in BAR4: not with mode legacy');
    const modernBarSize =
      notifyArea === undefined ? MODERN_BAR_SIZE : 2 ** Math.ceil(Math.log2(LEGACY_NOTIFY_AREA_OFFSET + notifyArea.size));
    const shm = regions.length > 0 ? new SharedMemoryCfg(regions, options.sharedMemoryBar64 ?? true) : undefined;
    const bars: (BarDescriptor | undefined)[] = [];
    if (hasLegacy) bars[LEGACY_BAR] = legacyBarDescriptor(device.configSize, vectors > 0);
    if (shm !== undefined) bars[SHARED_MEMORY_BAR] = shm.bar;
    if (vectors > 0) bars[MSIX_BAR] = msixBarDescriptor(vectors);
    if (hasModern) bars[MODERN_BAR] = { kind: 'memory', size: modernBarSize, is64: options.modernBar64 ?? true, prefetchable: true };
    const config = new ConfigSpace(
      {
        vendorId: VIRTIO_PCI_VENDOR_ID,
        deviceId: virtioPciDeviceId(mode, device.deviceType),
        revisionId: mode === 'modern' ? VIRTIO_PCI_MODERN_REVISION : VIRTIO_PCI_LEGACY_REVISION,
        classCode: options.classCode ?? virtioClassCode(device.deviceType),
        subsystemVendorId: VIRTIO_PCI_VENDOR_ID,
        subsystemId: options.subsystemId ?? (mode === 'modern' ? QEMU_PCI_SUBSYSTEM_ID : device.deviceType),
        interruptPin: PCI_INTERRUPT_PIN_INTA,
      },
      bars,
    );
    super(config, host);
    this.mode = mode;
    const interrupts = new MsixInterrupts(new IntxInterrupts(this));
    const audit = options.audit;
    const adminQueue = mode === 'legacy' ? undefined : options.adminQueue;
    const queueCount = device.queueMaxSizes.length + (adminQueue === undefined ? 0 : 1);
    this.notifications = new PciNotifications(queueCount, interrupts, () => this.core.resetPending, audit?.record);
    this.core = new DeviceCore(device, host.memory, this.notifications, {
      ...(mode === 'legacy' ? LEGACY_RULES : { transportFeatures: MODERN_TRANSPORT_FEATURES }),
      packed: options.packed ?? false,
      suspend: options.suspend ?? true,
      ...(audit === undefined ? {} : { audit: audit.record }),
      ...(options.deviceRing !== undefined ? { deviceRing: options.deviceRing } : {}),
      ...(adminQueue !== undefined ? { adminQueue } : {}),
    });
    // Shared memory capabilities first, as QEMU's virtio-gpu adds its region before the modern ones.
    if (shm !== undefined) {
      shm.addCapabilities(config);
      this.setBarRegion(SHARED_MEMORY_BAR, shm.region);
    }
    this.modernTransport = hasModern ? new ModernTransport(this.core, this.notifications, config, this) : undefined;
    for (const vendor of options.vendorData ?? []) addVendorDataCap(config, vendor);
    // After the virtio capabilities, as QEMU: the MSI-X capability heads the list.
    if (vectors > 0) {
      this.msix = new MsixTable(config, host, { vectors, bar: MSIX_BAR });
      this.setBarRegion(MSIX_BAR, this.msix.region);
      interrupts.attach(this.msix, () => this.notifications.peekIsr() !== 0);
    }
    const msix = this.msix;
    this.legacy = hasLegacy ? new LegacyTransport(this.core, this.notifications, () => msix?.enabled ?? false) : undefined;
    this.arbiter = mode === 'transitional' ? new InterfaceArbiter(this.core) : undefined;
    this.capWriteWatch = audit === undefined ? undefined : capabilityWriteWatch(config, audit);
    if (audit !== undefined) this.arbiter?.onIgnoredAccess((message) => audit.record(DRIVER_REQUIREMENTS.legacyOneInterface, message));
    const audited = (region: BarRegion, bar: number): BarRegion =>
      audit === undefined
        ? region
        : bar === MODERN_BAR
          ? auditedRegion(region, audit, bar, modernRegisterLabel, new GenerationLoopWatch(audit))
          : auditedRegion(region, audit, bar, legacyRegisterLabel);

    if (this.modernTransport !== undefined) {
      const region = this.modernTransport.region;
      const modern = audited(
        this.arbiter?.guard({
          kind: 'modern',
          bar: MODERN_BAR,
          region,
          rules: MODERN_RULES,
          isReset: (offset, _size, value) => offset === MODERN_COMMON_OFFSET + VIRTIO_PCI_COMMON_STATUS && (value & 0xff) === 0,
          readHasEffect: (offset) => offset >= MODERN_ISR_OFFSET && offset < MODERN_ISR_OFFSET + MODERN_BLOCK_SIZE,
        }) ?? region,
        MODERN_BAR,
      );
      if (notifyArea === undefined) this.setBarRegion(MODERN_BAR, modern);
      else {
        // The area is the owner's, not the modern interface's: outside the arbiter and the audit.
        notifyArea.place({ bar: MODERN_BAR, offset: LEGACY_NOTIFY_AREA_OFFSET });
        this.setBarRegion(
          MODERN_BAR,
          new RegionMap().add(0, MODERN_BAR_SIZE, modern).add(LEGACY_NOTIFY_AREA_OFFSET, notifyArea.size, notifyArea),
        );
      }
    }
    if (this.legacy !== undefined) {
      const region = this.legacy.region;
      this.setBarRegion(
        LEGACY_BAR,
        audited(
          this.arbiter?.guard({
            kind: 'legacy',
            bar: LEGACY_BAR,
            region,
            rules: LEGACY_RULES,
            isReset: (offset, _size, value) => offset === VIRTIO_PCI_STATUS && (value & 0xff) === 0,
            readHasEffect: (offset) => offset === VIRTIO_PCI_ISR,
          }) ?? region,
          LEGACY_BAR,
        ),
      );
    }
  }

  /**
   * The function's state at this moment, requests in flight included (docs/snapshots.md): config
   * space (BAR addresses, command register), MSI-X table and PBA, the ISR and vectors, the transport
   * registers, the committed interface, the core (status, features, queues, rings, chains in flight)
   * and the device model's own state. Guest memory is not part of it. SnapshotError
   * 'ERR_SNAPSHOT_UNSUPPORTED' for a device model or ring without snapshot support.
   */
  snapshot(): FunctionSnapshot {
    const device = this.device.snapshot?.();
    if (device === undefined)
      throw new SnapshotError('ERR_SNAPSHOT_UNSUPPORTED', `this ${deviceTypeName(this.device.deviceType)} model has no snapshot support`);
    return {
      version: SNAPSHOT_FORMAT_VERSION,
      kind: VIRTIO_PCI_FUNCTION_SNAPSHOT,
      fields: struct({
        deviceType: u16(this.device.deviceType),
        mode: string(this.mode),
        msixVectors: u16(this.msix?.vectors ?? 0),
        config: this.config.snapshot(),
        msix: this.msix?.snapshot(),
        notifications: this.notifications.snapshot(),
        common: this.modernTransport?.common.snapshot(),
        legacy: this.legacy?.snapshot(),
        arbiter: this.arbiter?.snapshot(),
        core: this.core.snapshot(),
        device,
      }),
    };
  }

  /**
   * Take the state of `snapshot` (see {@link VirtioPciFunction.snapshot}), into a function made like the one it was
   * taken of (same device type and options) and reset (fresh, or reset by its driver). Everything is
   * checked before anything changes: on a SnapshotError the function is exactly as it was. Guest
   * memory must hold what it held when the snapshot was taken: the chains in flight are read from it
   * again and handed to the device model as new requests, completed once.
   */
  restore(snapshot: FunctionSnapshot): void {
    this.prepareRestore(snapshot)();
  }

  /**
   * {@link restore} in two steps: check `snapshot` against this function, changing nothing
   * (SnapshotError otherwise), and return what applies it. Lets a caller check several functions
   * (a machine's) before changing any.
   */
  prepareRestore(snapshot: FunctionSnapshot): () => void {
    if (snapshot.version !== SNAPSHOT_FORMAT_VERSION)
      throw new SnapshotError(
        'ERR_SNAPSHOT_VERSION',
        `snapshot format version ${snapshot.version}; this build reads version ${SNAPSHOT_FORMAT_VERSION}`,
      );
    if (snapshot.kind !== VIRTIO_PCI_FUNCTION_SNAPSHOT)
      throw new SnapshotError(
        'ERR_SNAPSHOT_KIND',
        `a snapshot of a ${snapshot.kind.slice(0, 64)}, not of a ${VIRTIO_PCI_FUNCTION_SNAPSHOT}`,
      );
    const r = new SnapshotReader(snapshot.fields, 'function');
    const deviceType = r.u16('deviceType');
    if (deviceType !== this.device.deviceType)
      throw r.error(
        'ERR_SNAPSHOT_KIND',
        `a snapshot of device type ${deviceType}, this function is a ${deviceTypeName(this.device.deviceType)}`,
      );
    const mode = r.string('mode', 16);
    if (mode !== this.mode) throw r.error('ERR_SNAPSHOT_KIND', `a snapshot of a ${mode.slice(0, 16)} function, this one is ${this.mode}`);
    const vectors = r.u16('msixVectors');
    if (vectors !== (this.msix?.vectors ?? 0))
      throw r.error('ERR_SNAPSHOT_KIND', `${vectors} MSI-X vectors, this function has ${this.msix?.vectors ?? 0}`);
    const applies = [this.config.prepareRestore(r.struct('config'))];
    if (this.msix !== undefined) applies.push(this.msix.prepareRestore(r.struct('msix')));
    applies.push(this.notifications.prepareRestore(r.struct('notifications')));
    if (this.modernTransport !== undefined) applies.push(this.modernTransport.common.prepareRestore(r.struct('common')));
    if (this.legacy !== undefined) applies.push(this.legacy.prepareRestore(r.struct('legacy')));
    let rules = this.mode === 'legacy' ? LEGACY_RULES : MODERN_RULES;
    if (this.arbiter !== undefined) {
      const arbiter = this.arbiter.prepareRestore(r.struct('arbiter'));
      applies.push(arbiter.apply);
      if (arbiter.committed === 'legacy') rules = LEGACY_RULES;
    }
    applies.push(this.core.prepareRestore(r.struct('core'), r.struct('device'), rules));
    return () => {
      for (const apply of applies) apply();
      this.drivePin();
    };
  }
}
