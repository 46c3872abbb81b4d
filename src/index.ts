/**
 * virtio-ts: the virtio PCI transport, device and driver halves. This main entry runs anywhere
 * (a browser too: no Node built-ins, no Buffer): the device half, the driver half, the in-process
 * machine, memory backends and Web Crypto entropy. Node-only parts are in `virtio-ts/node` (files,
 * sockets, streams), `virtio-ts/qemu` (QEMU over qtest) and `virtio-ts/v86/node` (the v86 emulator's Linux
 * guest; its PCI adapter, browser-safe, is `virtio-ts/v86`);
 * `virtio-ts/testing` holds the builders for emulator authors' own tests. Modules deeper than these
 * entries are not part of the API.
 *
 * @packageDocumentation
 */

// Errors.
export * from './errors.js';

// Spec constants, named as the spec names them.
export * from './spec/ids.js';
export * from './spec/status.js';
export * from './spec/features.js';
export * from './spec/ring.js';
export * from './spec/packed-ring.js';
export * from './spec/virtio-pci.js';
export * as pciSpec from './spec/pci.js';
export * as blkSpec from './spec/blk.js';
export * as netSpec from './spec/net.js';
export * as consoleSpec from './spec/console.js';

// Guest memory, access sizes and DMA memory (the floor both halves stand on).
export * from './memory/guest-memory.js';
export type { DmaBuffer, DmaMemory, DmaSpan } from './memory/dma.js';

// Device half: the emulator's face, PCI model, transports, queues, device models and backends.
export type { AccessSize } from './memory/access-size.js';
export type { BarDescriptor, BarKind, DecodedBar, DeviceHost, PciFunction } from './pci/function.js';
export { PciEndpoint } from './pci/endpoint.js';
export type { BarRegion } from './pci/bar-region.js';
export type { Capability, CapabilityDefinition, ConfigSpace as PciConfigSpace } from './pci/config-space.js';
export type { MsixTable } from './pci/msix.js';
export type {
  DescriptorChain,
  DeviceQueue,
  DriverRing,
  InOrderRing,
  RestoredChain,
  RingAreas,
  RingPosition,
  UsedBuffer,
} from './queue/types.js';
export { InOrderQueue } from './queue/in-order-queue.js';
export {
  PACKED_RING,
  SPLIT_RING,
  checkQueueMaxSize,
  ringFormat,
  type AreaAlignment,
  type RingFormat,
  type RingLayout,
} from './queue/ring-format.js';
export { deviceRing, driverRing, type DeviceRingOptions, type DriverRingOptions } from './queue/rings.js';
export type { ActivateContext, ResetCompletion, VirtioDevice, VirtioDeviceHost } from './core/virtio-device.js';
// Shared memory regions (2.10, 4.1.4.7) and vendor data (4.1.4.8), both halves.
export { SharedMemory, SHARED_MEMORY_MAX_ARRAY_SIZE, type SharedMemoryRegion } from './core/shared-memory.js';
export { SHARED_MEMORY_BAR } from './transport/pci/shared-memory-cfg.js';
export type { VendorData } from './transport/pci/vendor-cfg.js';
export { SharedMemoryWindow, type SharedMemoryCap } from './transport/pci/shared-memory-driver.js';
export type { VendorDataCap } from './transport/pci/vendor-cfg-driver.js';
export { SplitQueue } from './queue/split/device-ring.js';
export type { SplitQueueOptions } from './queue/split/device-ring.js';
export { PackedQueue, type PackedQueueOptions } from './queue/packed/device-ring.js';
export type { PackedDescriptorWalk, PackedDescriptorWalkOptions } from './queue/packed/descriptor-chain.js';
export type { DescriptorWalk, DescriptorWalkOptions } from './queue/split/descriptor-chain.js';
export type { ChainSlots, ChainStorage, ChainStorageFault } from './queue/chain-storage.js';
export { LEGACY_NOTIFY_AREA_OFFSET, VirtioPciFunction, type VirtioPciFunctionOptions } from './transport/pci/virtio-pci-function.js';
// Device-state snapshots (docs/snapshots.md): VirtioPciFunction.snapshot()/restore() and the byte format.
export { VIRTIO_PCI_FUNCTION_SNAPSHOT } from './transport/pci/virtio-pci-function.js';
export { encodeSnapshot, decodeSnapshot, SNAPSHOT_MAX_BYTES, SNAPSHOT_MAX_DEPTH } from './snapshot/codec.js';
export { SnapshotReader } from './snapshot/snapshot-reader.js';
export {
  SNAPSHOT_FORMAT_VERSION,
  type FunctionSnapshot,
  type SnapshotBytes,
  type SnapshotInt,
  type SnapshotList,
  type SnapshotString,
  type SnapshotStruct,
  type SnapshotU64,
  type SnapshotValue,
} from './snapshot/snapshot-value.js';
/** Builders of snapshot fields (u8, u16, u32, u64, flag, bytes, string, list, struct), for a device model's snapshot(). */
export * as snapshotFields from './snapshot/snapshot-value.js';
export { QEMU_PCI_SUBSYSTEM_ID, type VirtioPciMode } from './transport/pci/virtio-pci-function.js';
export type { ModernTransport } from './transport/pci/modern-device.js';
export type { CommonCfg } from './transport/pci/common-cfg.js';
export type { LegacyTransport } from './transport/pci/legacy-device.js';
export type { GuardedInterface, InterfaceArbiter, VirtioInterface } from './transport/pci/interface-arbiter.js';
export { DeviceCore, type DeviceCoreOptions } from './core/device-core.js';
export { RESET_PENDING_STATUS } from './core/device-reset.js';
// The driver audit: devices recording the driver-side statements a driver breaks.
export { DriverAudit, type DriverAuditFinding, type RegisterLabel } from './core/driver-audit.js';
export {
  DRIVER_REQUIREMENTS,
  type DriverAuditSink,
  type DriverRequirement,
  type DriverRequirementName,
  type RequirementLevel,
} from './spec/driver-requirements.js';
export { FEATURE_WORDS } from './core/feature-negotiation.js';
export { MODERN_STATUS_STEPS, type StatusStep } from './core/device-status.js';
export type { InterfaceRules } from './core/interface-rules.js';
export type { DriverNotification, NotificationSink } from './core/device-core.js';
export type { RingArea, VirtqueueConfig } from './core/virtqueue-config.js';
export type { PciNotifications } from './transport/pci/pci-notifications.js';
export type { InterruptSink } from './transport/pci/intx-interrupts.js';
export { RngDevice, type RngDeviceOptions } from './device/rng/rng-device.js';
export { webCryptoEntropy, type EntropySource } from './device/rng/entropy.js';
export { BlkDevice, type BlkDeviceOptions } from './device/blk/blk-device.js';
export type { BlkTopology } from './device/blk/blk-device.js';
export { guestViews, type BlockBackend, type GuestIo, type GuestSpan } from './device/blk/backend.js';
export type { BlockResult } from './device/blk/backend.js';
export { MemoryBlockBackend } from './device/blk/memory-backend.js';
export type { MemoryBackendOptions } from './device/blk/memory-backend.js';
export { VirtioNetDevice, type VirtioNetDeviceOptions } from './device/net/net-device.js';
export type { NetDeviceStats } from './device/net/net-device.js';
export type { RxFilter, RxModes } from './device/net/rx-filter.js';
export type { NetBackend, NetBackendPort } from './device/net/backend.js';
export { createMemoryNetPair } from './device/net/memory-pair.js';
export { PingResponder, type PingResponderOptions, type PingResponderStats } from './device/net/ping-responder.js';
export { VirtioConsoleDevice, type VirtioConsoleDeviceOptions } from './device/console/console-device.js';
export type { ConsoleDeviceStats, ConsolePortOptions } from './device/console/console-device.js';
export type { ConsolePort } from './device/console/console-port.js';
export type { ConsoleBytePort, ConsolePortLink } from './device/console/byte-port.js';

// Driver half: the bus, the probe, the driver core and device drivers.
export { bdf, formatBdf, type Bdf, type BusResources, type InterruptEvent, type PciBus } from './bus/pci-bus.js';
export { DmaAllocator } from './bus/dma-allocator.js';
export { enumerate } from './bus/enumerate.js';
export type { PciFunctionId } from './bus/enumerate.js';
export { assignBars } from './bus/bars.js';
export type { MsixCapability } from './bus/capabilities.js';
export { readConfigSpace } from './bus/config-space-reader.js';
export type { ConfigSpaceSnapshot } from './bus/config-space-reader.js';
export { formatLspci } from './driver/lspci.js';
export { probe, decideTransport, type ProbeOptions, type ProbeResult } from './transport/pci/probe.js';
export type { LegacyProbe, ModernLayout, ModernProbe, VirtioStructure } from './transport/pci/probe.js';
export type { DriverTransport } from './transport/pci/driver-transport.js';
export type { QueueAddresses } from './transport/pci/driver-transport.js';
export { checkDeviceConfigAccess } from './transport/pci/driver-transport.js';
export type { InterruptMode, InterruptPlan, MsiRoute } from './transport/pci/msix-driver.js';
export { VirtioDriver, type VirtioDriverOptions } from './driver/virtio-driver.js';
export type { RingChoice } from './driver/feature-negotiation.js';
export type { QueueOptions } from './driver/virtqueues.js';
export { DriverQueue } from './driver/driver-queue.js';
export type { Completion, QueueHost } from './driver/driver-queue.js';
export { SplitQueueDriver } from './queue/split/driver-ring.js';
export type { SplitQueueDriverOptions } from './queue/split/driver-ring.js';
export { PackedQueueDriver } from './queue/packed/driver-ring.js';
export type { PackedQueueDriverOptions } from './queue/packed/driver-ring.js';
export { RngDriver } from './driver/rng/rng-driver.js';
export type { RngDriverOptions } from './driver/rng/rng-driver.js';
export { BlkDriver, BlkStatusError, type BlkConfig, type BlkOp } from './driver/blk/blk-driver.js';
export type { BlkDriverOptions } from './driver/blk/blk-driver.js';
export { VirtioNetDriver } from './driver/net/net-driver.js';
export type { NetDriverStats, VirtioNetDriverOptions } from './driver/net/net-driver.js';
export { VirtioConsoleDriver } from './driver/console/console-driver.js';
export { ConsoleDriverPort } from './driver/console/console-port.js';
export type { VirtioConsoleDriverOptions } from './driver/console/console-driver.js';
export type { ConsoleSize } from './driver/console/console-port.js';

// The transport monitor: what a driver does to our functions, for live views (the browser page).
export {
  TransportMonitor,
  DEFAULT_STATUS_HISTORY,
  type FunctionView,
  type MonitoredInterface,
  type NamedFeatures,
  type QueueView,
  type StatusChange,
  type TransportMonitorOptions,
  type TransportSnapshot,
  type WatchOptions,
} from './monitor/transport-monitor.js';
export type { CapabilityMap, MappedStructure } from './monitor/capability-map.js';
export type { DeviceObserver, StatusCause } from './core/device-observer.js';

// The in-process machine: device and driver halves joined on one bus.
export { Machine, type MachineOptions } from './platform/machine.js';
export { HIGH_RAM_BASE, type Plugged } from './platform/machine.js';

// The administration virtqueue (VIRTIO_F_ADMIN_VQ, spec 2.12-2.13), both halves: docs/admin.md.
export * from './spec/admin.js';
export type { AdminQueueHandler } from './core/admin-queue-handler.js';
export { AdminVirtqueue, type AdminVirtqueueOptions } from './device/admin/admin-virtqueue.js';
export { SriovGroup } from './device/admin/sriov-group.js';
export { SELF_GROUP, type DeviceGroup } from './device/admin/device-group.js';
export type { LegacyInterface } from './device/admin/legacy-interface.js';
export { ADMIN_CMD_DATA_MAX, type AdminAnswer, type AdminCommand } from './device/admin/admin-command.js';
export { AdminQueue, type AdminCommandAnswer, type AdminCommandRequest } from './driver/admin/admin-queue.js';
export { LegacyNotifyArea, LEGACY_NOTIFY_STRIDE } from './device/admin/legacy-notify-area.js';
export type { LegacyNotifyPlacement, LegacyNotifyRegion } from './core/legacy-notify-region.js';
export {
  LEGACY_NOTIFY_WIDTH,
  notifyAddressFault,
  parseLegacyNotifyInfo,
  type IgnoredNotifyEntry,
  type LegacyNotifyAddress,
  type LegacyNotifyInfo,
} from './driver/admin/legacy-notify-info.js';
