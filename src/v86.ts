/**
 * virtio-ts/v86: the v86 x86 emulator as a peer, browser-safe (no Node built-ins): `V86PciAdapter`
 * puts device-half functions on v86's PCI bus, in a page as under Node. What needs Node (booting the
 * project's Linux guest from its cached files, saved states, `V86DriverBus`) is in
 * `virtio-ts/v86/node`.
 *
 * @packageDocumentation
 */

export {
  V86PciAdapter,
  FIRST_FREE_DEVFN,
  MAX_RECORDED_CONFIG_WRITES,
  type ConfigWrite,
  type PluggedFunction,
  type V86PciAdapterOptions,
} from './platform/v86/pci-adapter.js';
export { MAX_REFUSED_BARS } from './platform/v86/bar-routing.js';
export {
  BASE_CMDLINE,
  DONE_MARK,
  POWEROFF_MARK,
  READY_MARK,
  SERIAL_LINE_CHARS,
  SERIAL_LOG_CHARS,
  SerialLog,
  parseDone,
} from './platform/v86/guest-protocol.js';
export type { CommandOutput, GuestResult } from './platform/v86/guest-protocol.js';
export type { V86GuestMemory } from './platform/v86/guest-memory.js';
export { seabiosMemoryMap, type V86MemoryMap } from './platform/v86/memory-map.js';
