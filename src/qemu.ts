/**
 * virtio-ts/qemu (Node only): QEMU's virtio devices as a driver-half `PciBus`, over the qtest
 * protocol (QEMU runs no guest; our driver programs the PCI bus and reads and writes guest RAM).
 *
 * @packageDocumentation
 */

export { QtestPciBus, type QtestPciBusOptions } from './platform/qtest/qtest-pci-bus.js';
export { QemuProcess, findQemu, qemuVersion, type QemuMachine, type QemuOptions } from './platform/qtest/qemu-process.js';
export type { GuestRamDma } from './platform/qtest/guest-ram-dma.js';
export type { IrqListener, QtestClient } from './platform/qtest/qtest-client.js';
