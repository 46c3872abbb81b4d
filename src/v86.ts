/**
 * virtio-ts/v86 (Node only): the v86 x86 emulator as a peer. `V86PciAdapter` puts device-half
 * functions on v86's PCI bus, `LinuxGuest` boots a Linux guest whose drivers bind to them, and
 * `V86DriverBus` drives v86's own virtio devices with our driver half.
 *
 * @packageDocumentation
 */

export {
  V86PciAdapter,
  MAX_RECORDED_CONFIG_WRITES,
  MAX_REFUSED_BARS,
  type ConfigWrite,
  type PluggedFunction,
  type V86PciAdapterOptions,
} from './platform/v86/pci-adapter.js';
export { LinuxGuest, type GuestDevice, type GuestSlot, type LinuxGuestOptions } from './platform/v86/linux-guest.js';
export type { CommandOutput, GuestResult } from './platform/v86/guest-protocol.js';
export { V86DriverBus, type V86DriverBusOptions } from './platform/v86/v86-driver-bus.js';
export {
  GUEST_KERNELS,
  buildGuestAssets,
  defaultGuestKernel,
  findGuestAssets,
  guestAssetDir,
  type BuildProgress,
  type GuestAssets,
  type GuestKernel,
} from './platform/v86/assets.js';
export type { V86GuestMemory } from './platform/v86/guest-memory.js';
export { seabiosMemoryMap, type V86MemoryMap } from './platform/v86/memory-map.js';
