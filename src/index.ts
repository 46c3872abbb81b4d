/**
 * virtio-ts: the virtio PCI transport, device and driver halves. This main entry runs anywhere
 * (a browser too: no Node built-ins, no Buffer): the device half, the driver half, the in-process
 * machine, memory backends and Web Crypto entropy. Node-only parts are in `virtio-ts/node` (files,
 * sockets, streams), `virtio-ts/qemu` (QEMU over qtest) and `virtio-ts/v86` (the v86 emulator);
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
export * from './spec/virtio-pci.js';
export * as pciSpec from './spec/pci.js';
export * as blkSpec from './spec/blk.js';
export * as netSpec from './spec/net.js';
export * as consoleSpec from './spec/console.js';

// Guest memory.
export * from './memory/guest-memory.js';

// Device half: the emulator's face, PCI model, transports, queues, device models and backends.
export type { AccessSize, BarDescriptor, BarKind, DecodedBar, DeviceHost, PciFunction } from './pci/function.js';
export type { DescriptorChain, DeviceQueue } from './queue/types.js';
export type { ActivateContext, ResetCompletion, VirtioDevice, VirtioDeviceHost } from './device/virtio-device.js';
export { SplitQueue, type SplitQueueOptions } from './queue/split/device-queue.js';
export { VirtioPciFunction, QEMU_PCI_SUBSYSTEM_ID, type VirtioPciFunctionOptions, type VirtioPciMode } from './transport/pci/virtio-pci-function.js';
export type { BarRegion } from './pci/bar-region.js';
export { ConfigSpace as PciConfigSpace, Capability, type CapabilityDefinition, type PciHeader } from './pci/config-space.js';
export { PciEndpoint } from './pci/endpoint.js';
export type { MsixTable } from './pci/msix.js';
export type { GuardedInterface, InterfaceArbiter, VirtioInterface } from './transport/pci/interface-arbiter.js';
export type { LegacyTransport } from './transport/pci/legacy-device.js';
export type { ModernTransport } from './transport/pci/modern-device.js';
export { DeviceCore, FEATURE_WORDS, MODERN_STATUS_STEPS, RESET_PENDING_STATUS, type InterfaceRules, type StatusStep, type InterruptSink, type RingArea, type VirtqueueConfig } from './transport/device-core.js';
export { RngDevice, type RngDeviceOptions } from './device/rng/rng-device.js';
export { webCryptoEntropy, type EntropySource } from './device/rng/entropy.js';
export { BlkDevice, type BlkDeviceOptions, type BlkTopology } from './device/blk/blk-device.js';
export { guestViews, type BlockBackend, type BlockResult, type GuestIo, type GuestSpan } from './device/blk/backend.js';
export { MemoryBlockBackend, type MemoryBackendOptions } from './device/blk/memory-backend.js';
export { VirtioNetDevice, type NetDeviceStats, type VirtioNetDeviceOptions } from './device/net/net-device.js';
export type { RxFilter, RxModes } from './device/net/rx-filter.js';
export type { NetBackend, NetBackendPort } from './device/net/backend.js';
export { createMemoryNetPair } from './device/net/memory-pair.js';
export { VirtioConsoleDevice, type ConsoleDeviceStats, type ConsolePortOptions, type VirtioConsoleDeviceOptions } from './device/console/console-device.js';
export type { ConsolePort } from './device/console/console-port.js';
export type { ConsoleBytePort, ConsolePortLink } from './device/console/byte-port.js';

// Driver half: the bus, the probe, the driver core and device drivers.
export { bdf, formatBdf, type Bdf, type BusResources, type DmaBuffer, type DmaMemory, type InterruptEvent, type PciBus } from './driver/pci-bus.js';
export { DmaAllocator } from './driver/dma-allocator.js';
export { enumerate, type PciFunctionId } from './driver/pci/enumerate.js';
export { readConfigSpace, type ConfigSpace } from './driver/pci/config-space.js';
export { formatLspci } from './driver/pci/lspci.js';
export { probe, decideTransport, type LegacyProbe, type ModernLayout, type ModernProbe, type VirtioCap, type VirtioStructure, type ProbeOptions, type ProbeResult } from './transport/pci/probe.js';
export type { DriverTransport, QueueAddresses } from './transport/pci/driver-transport.js';
export type { InterruptMode, InterruptPlan, MsiRoute } from './transport/pci/msix-driver.js';
export type { MsixCapability } from './driver/pci/capabilities.js';
export { assignBars } from './driver/pci/bars.js';
export { VirtioDriver, type QueueOptions, type VirtioDriverOptions } from './driver/virtio-driver.js';
export { DriverQueue, type Completion, type QueueHost } from './driver/driver-queue.js';
export { SplitQueueDriver, type DmaSpan, type SplitQueueDriverOptions, type UsedBuffer } from './queue/split/driver-queue.js';
export { RngDriver, type RngDriverOptions } from './driver/rng/rng-driver.js';
export { BlkDriver, BlkStatusError, type BlkConfig, type BlkDriverOptions, type BlkOp } from './driver/blk/blk-driver.js';
export { VirtioNetDriver, type NetDriverStats, type VirtioNetDriverOptions } from './driver/net/net-driver.js';
export { VirtioConsoleDriver, ConsoleDriverPort, type ConsoleSize, type VirtioConsoleDriverOptions } from './driver/console/console-driver.js';

// The in-process machine: device and driver halves joined on one bus.
export { Machine, HIGH_RAM_BASE, type MachineOptions, type Plugged } from './platform/machine.js';
