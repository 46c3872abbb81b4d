/**
 * virtio-ts: the virtio PCI transport, device and driver halves. This module is the public API;
 * deeper modules (under dist/src/) are importable too but may change between versions.
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
export type { ActivateContext, VirtioDevice, VirtioDeviceHost } from './device/virtio-device.js';
export { SplitQueue } from './queue/split/device-queue.js';
export { VirtioPciFunction, type VirtioPciFunctionOptions } from './transport/pci/virtio-pci-function.js';
export { DeviceCore } from './transport/device-core.js';
export { RngDevice, type RngDeviceOptions } from './device/rng/rng-device.js';
export { webCryptoEntropy, type EntropySource } from './device/rng/entropy.js';
export { BlkDevice, type BlkDeviceOptions } from './device/blk/blk-device.js';
export { guestViews, type BlockBackend, type GuestIo, type GuestSpan } from './device/blk/backend.js';
export { MemoryBlockBackend } from './device/blk/memory-backend.js';
export { FileBlockBackend } from './device/blk/file-backend.js';
export { VirtioNetDevice, type VirtioNetDeviceOptions } from './device/net/net-device.js';
export type { NetBackend, NetBackendPort } from './device/net/backend.js';
export { createMemoryNetPair } from './device/net/memory-pair.js';
export { StreamNetBackend } from './device/net/stream-backend.js';
export { DgramNetBackend } from './device/net/dgram-backend.js';
export { VirtioConsoleDevice, type VirtioConsoleDeviceOptions } from './device/console/console-device.js';
export { filePortStreams, socketPortStreams, stdioPortStreams, streamBytePort, type ConsolePortStreams } from './device/console/port-streams.js';
export type { ConsoleBytePort, ConsolePortLink } from './device/console/byte-port.js';

// Driver half: the bus, the probe, the driver core and device drivers.
export { bdf, formatBdf, type Bdf, type BusResources, type DmaBuffer, type DmaMemory, type InterruptEvent, type PciBus } from './driver/pci-bus.js';
export { DmaAllocator } from './driver/dma-allocator.js';
export { enumerate } from './driver/pci/enumerate.js';
export { readConfigSpace } from './driver/pci/config-space.js';
export { formatLspci } from './driver/pci/lspci.js';
export { probe, decideTransport, type ProbeOptions, type ProbeResult } from './transport/pci/probe.js';
export type { DriverTransport } from './transport/pci/driver-transport.js';
export { VirtioDriver, type VirtioDriverOptions } from './driver/virtio-driver.js';
export { DriverQueue } from './driver/driver-queue.js';
export { SplitQueueDriver, type DmaSpan } from './queue/split/driver-queue.js';
export { RngDriver } from './driver/rng/rng-driver.js';
export { BlkDriver, BlkStatusError, type BlkConfig, type BlkOp } from './driver/blk/blk-driver.js';
export { VirtioNetDriver } from './driver/net/net-driver.js';
export { VirtioConsoleDriver, ConsoleDriverPort } from './driver/console/console-driver.js';

// Platforms: the in-process machine, QEMU over qtest, the v86 emulator.
export { Machine, type MachineOptions } from './platform/machine.js';
export { QtestPciBus, type QtestPciBusOptions } from './platform/qtest/qtest-pci-bus.js';
export { V86PciAdapter } from './platform/v86/pci-adapter.js';
export { LinuxGuest } from './platform/v86/linux-guest.js';
