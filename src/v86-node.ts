/**
 * virtio-ts/v86/node (Node only): the v86 parts that need Node. `LinuxGuest` boots the project's
 * Linux guest (its files built into the cache, saved states on disk) with virtio-ts functions on its
 * bus, and `V86DriverBus` drives v86's own virtio devices with our driver half. The adapter itself,
 * browser-safe, is in `virtio-ts/v86`.
 *
 * @packageDocumentation
 */

export { LinuxGuest, type GuestDevice, type GuestSlot, type LinuxGuestOptions } from './platform/v86/linux-guest.js';
export { V86DriverBus, type V86DriverBusOptions } from './platform/v86/v86-driver-bus.js';
export type { V86OwnDevices } from './platform/v86/own-devices.js';
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
