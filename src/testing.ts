/**
 * virtio-ts/testing (Node): the builders this project's own tests, benchmarks and fuzzer use, for
 * emulator authors testing their device models and drivers without a guest.
 *
 * - {@link MockQueue} plays the driver of one split virtqueue in guest memory: build chains by name
 *   with `addChain`, notify your device, read what it did with `readUsed` and `readWritten`; the raw
 *   pokes (`setDesc`, `setAvailIdx`, ...) forge hostile rings. Buffers land at seeded random gaps, so
 *   a device that assumes contiguous buffers fails here rather than in a guest.
 *   {@link MockPackedQueue} does the same for a packed virtqueue (VIRTIO_F_RING_PACKED); both are a
 *   {@link MockRing}, so a device-model test can run on either format.
 * - {@link GuardedMemory} wraps guest memory and records every access outside the ranges you allow,
 *   counts accesses against a budget (a guest-driven loop that never ends shows up as an overrun),
 *   and catches writes made through zero-copy views; call `assertClean()` after the run.
 * - {@link ConfigSpaceBuilder} builds a PCI configuration space image by name (header, BARs, virtio
 *   and MSI-X capabilities; malformed lists too), and {@link FakePciBus} serves such images to a
 *   driver with working BAR sizing and per-BAR handlers, so a driver is tested without any device.
 * - {@link RecordingBus} wraps any `PciBus` and records every access, to assert what a driver
 *   touched and what it never did.
 *
 * @example The device side of a mock queue, as a transport would hand it to a device model:
 * ```ts
 * import { MockQueue } from 'virtio-ts/testing';
 *
 * const q = new MockQueue({ size: 16 });
 * const ring = q.deviceQueue(); // what your device model pops chains from
 * const head = q.addChain({ readable: [new TextEncoder().encode('hello')], writable: [8] });
 * // ... notify your device model; here, what it would do:
 * const chain = ring.pop()!;
 * ring.pushUsed(chain.head, 3);
 * assert.deepEqual(q.readUsed(), [{ id: head, len: 3 }]);
 * ```
 *
 * @packageDocumentation
 */

export {
  MockQueue,
  WRITABLE_FILL,
  type ChainSpec,
  type DescFields,
  type MockQueueOptions,
  type Span,
  type UsedBatch,
  type UsedElem,
} from './testing/mock-queue.js';
export { MockPackedQueue, availFlags, type PackedDescFields } from './testing/mock-packed-queue.js';
export { MockRing, type DeviceQueueFeatures, type PlacedBuffer } from './testing/mock-ring.js';
export {
  GuardedMemory,
  AccessBudgetExceeded,
  type AccessKind,
  type GuardedMemoryOptions,
  type MemoryViolation,
} from './testing/guarded-memory.js';
export {
  ConfigSpaceBuilder,
  qemuLikeVirtio,
  type BarSpec,
  type BuiltFunction,
  type HeaderSpec,
  type SharedMemoryCapSpec,
  type VirtioCapSpec,
} from './testing/config-space-builder.js';
export { FakePciBus, LocalDma, type BusAccess, type RegionHandler } from './testing/fake-pci-bus.js';
export { RecordingBus, type RecordedAccess, type RecordingBusOptions } from './testing/recording-bus.js';
