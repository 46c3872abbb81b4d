/**
 * Target (d): the driver half against a hostile device. A real in-process device sits behind a
 * {@link HostileBus} whose every register read, dropped write and used-ring entry (id, len,
 * used.idx) the input may choose; each device driver (rng, blk, net, console) opens it, does some
 * I/O and closes.
 *
 * A first byte of 30 or more adds an Adversary (harness/hostile-bus.ts): config fields that always
 * lie (MSI-X table/PBA offsets, BAR sizes, pre-programmed BAR addresses), a DMA allocation failing
 * midway, and for net a receiveq of FLOOD_QUEUE_SIZE small buffers that a flood of short used
 * elements returns at once.
 *
 * An input that ends with the RING_TRAILER picks the ring variant from the byte before it (bit 0:
 * the device offers VIRTIO_F_RING_PACKED, so on the modern interface every driver takes the packed
 * ring and the bus's used-descriptor lies use the packed layout); those three bytes are then not
 * part of the tamper stream. Inputs without it (the whole corpus kept before it existed) run the
 * split ring as before: with VIRTIO_F_IN_ORDER on the modern interface (offered, and asked for by
 * every driver), without it on the legacy one (bit 35 lies beyond its 32-bit feature word).
 * Bit 1 of the variant byte gives a modern or transitional device two shared memory regions and a
 * vendor data capability (spec 4.1.4.7, 4.1.4.8), whose bytes the tamper stream may then rewrite;
 * the driver reads the first and last byte of every region the probe exposed.
 *
 * Guarantees checked: every driver call ends in success or one of our typed errors (never another
 * exception, never an unhandled rejection); every call settles (waits have timeouts; a run that has
 * not settled after HANG_MS of wall-clock time is a hang; the drivers' own timers run on a virtual
 * clock, harness/virtual-clock.ts); returned data has exactly the size asked for; with no
 * tampering at all everything succeeds (unless an allocation was made to fail); close() leaves no
 * timers behind; the driver refreshes (looks at) only memory it allocated and has not freed, so a
 * used len beyond a buffer is refused before the data is read; every DMA byte is back in the allocator once close() has succeeded, or once an open
 * failed against a device that told no lies (it could reset it).
 */

import { BlkDriver } from '../../src/driver/blk/blk-driver.js';
import { VirtioConsoleDriver } from '../../src/driver/console/console-driver.js';
import { VirtioNetDriver } from '../../src/driver/net/net-driver.js';
import { RngDriver } from '../../src/driver/rng/rng-driver.js';
import { VirtioError } from '../../src/errors.js';
import { Machine } from '../../src/platform/machine.js';
import { SharedMemory } from '../../src/core/shared-memory.js';
import { SharedMemoryWindow } from '../../src/transport/pci/shared-memory-driver.js';
import type { VirtioDriver } from '../../src/driver/virtio-driver.js';
import { hasFeature, VIRTIO_F_RING_PACKED } from '../../src/spec/features.js';
import type { VirtioPciMode } from '../../src/transport/pci/virtio-pci-function.js';
import { GuaranteeViolation, check, describe, expectTypedAsync } from '../engine/guarantees.js';
import { FuzzInput, InputWriter } from '../engine/input.js';
import type { MutationShape } from '../engine/mutator.js';
import type { Seed } from '../engine/target.js';
import { makeZooDevice, type ZooKind } from '../harness/device-zoo.js';
import { RamPool } from '../harness/ram-pool.js';
import { VirtualClock } from '../harness/virtual-clock.js';
import { HostileBus, NO_ADVERSARY, OPERATION_BUDGET, capRelative, decodeAdversary, type Adversary } from '../harness/hostile-bus.js';
import type { Bdf, PciBus } from '../../src/bus/pci-bus.js';
import { PCI_CAPABILITY_LIST, PCI_CAP_ID_MSIX, PCI_STATUS, PCI_STATUS_CAP_LIST } from '../../src/spec/pci.js';

export const description = 'driver half (rng, blk, net, console) against a device whose register reads and used entries the input picks';

const KINDS: readonly ZooKind[] = ['rng', 'blk', 'net', 'console-multiport', 'console'];
/** The first input byte picks the device (byte % 5) and, from byte / 5, the mode and MSI-X vectors. */
const MODES: readonly VirtioPciMode[] = ['modern', 'transitional', 'legacy'];
const MSIX_VECTORS = [0, 4] as const;
/** Every driver wait, in ms: short, so a device that never answers costs little. */
const TIMEOUT_MS = 3;
/** A run not settled by then never would: a hang. */
const HANG_MS = 1000;
/** Variants below this (first byte < 30) have no Adversary: the corpus kept before it existed means what it meant. */
const PLAIN_VARIANTS = MODES.length * MSIX_VECTORS.length;
/** Net's queues under a flood: thousands of receive buffers of FLOOD_RX_BUFFER bytes. */
const FLOOD_QUEUE_SIZE = 2048;
const FLOOD_RX_BUFFER = 64;
/**
 * Marks the ring variant byte at the input's end. No input kept before it existed ends with these
 * two bytes, and the mutator keeps tails often enough (truncation drops it: the split variant).
 */
const RING_TRAILER = [0x52, 0xa7] as const;
/** The ring variant byte: the device offers VIRTIO_F_RING_PACKED. */
const RING_PACKED_OFFERED = 1;
/** The ring variant byte: the device presents shared memory regions and vendor data (not on a legacy-only function). */
const SHARED_MEMORY_AND_VENDOR_DATA = 2;

/** The tamper stream and ring variant byte of an input (see the file comment). */
function ringVariant(data: Uint8Array): { stream: Uint8Array; variant: number } {
  const n = data.length;
  if (n < 4 || data[n - 2] !== RING_TRAILER[0] || data[n - 1] !== RING_TRAILER[1]) return { stream: data, variant: 0 };
  return { stream: data.subarray(0, n - 3), variant: data[n - 3]! };
}

export const shape: MutationShape = { maxLength: 2048 };

const unhandled: unknown[] = [];
let listening = false;
const rams = new RamPool();

export async function run(data: Uint8Array): Promise<void> {
  // Driver waits run on virtual time (harness/virtual-clock.ts): each still ends by its own timer,
  // without costing its wall-clock milliseconds, and the same way whatever the machine's load.
  const clock = new VirtualClock();
  clock.install();
  try {
    await runOn(clock, data);
  } finally {
    clock.uninstall();
  }
}

async function runOn(clock: VirtualClock, data: Uint8Array): Promise<void> {
  if (!listening) {
    // A rejection nobody handles is an exception escaping the driver.
    process.on('unhandledRejection', (reason) => void unhandled.push(reason));
    listening = true;
  }
  unhandled.length = 0;
  const ring = ringVariant(data);
  const packed = (ring.variant & RING_PACKED_OFFERED) !== 0;
  const input = new FuzzInput(ring.stream);
  const pick = input.u8();
  const kind = KINDS[pick % KINDS.length]!;
  const variant = Math.floor(pick / KINDS.length);
  const adversarial = variant >= PLAIN_VARIANTS;
  // Net with an Adversary, every other variant: the receiveq a flood returns (FLOOD_QUEUE_SIZE buffers).
  const flood = adversarial && kind === 'net' && Math.floor(variant / PLAIN_VARIANTS) % 2 === 1;
  const zoo = makeZooDevice(kind, flood ? FLOOD_QUEUE_SIZE : undefined);
  const ram = rams.take(flood ? 1 << 20 : 1 << 18);
  const machine = new Machine({ ram });
  // The device in each transport mode, with or without MSI-X: the driver probes and commits to one.
  const mode = MODES[variant % MODES.length]!;
  const extraCaps = (ring.variant & SHARED_MEMORY_AND_VENDOR_DATA) !== 0 && mode !== 'legacy';
  if (extraCaps)
    Object.defineProperty(zoo.device, 'sharedMemoryRegions', { value: [new SharedMemory(1, 0x1000), new SharedMemory(200, 0x3000)] });
  const { bdf } = machine.plugVirtio(zoo.device, {
    mode,
    packed,
    msixVectors: MSIX_VECTORS[Math.floor(variant / MODES.length) % MSIX_VECTORS.length]!,
    ...(extraCaps ? { vendorData: [{ vendorId: 0x8086, data: Uint8Array.of(1, 2, 3, 4, 5) }] } : {}),
  });
  const adversary: Adversary = adversarial ? decodeAdversary(input, await capabilities(machine.bus, bdf)) : NO_ADVERSARY;
  const bus = new HostileBus(machine.bus, machine.memory, input, adversary, packed && mode !== 'legacy' ? 'packed' : 'split');
  const options = flood ? { timeoutMs: TIMEOUT_MS, queueSize: FLOOD_QUEUE_SIZE, rxBufferSize: FLOOD_RX_BUFFER } : { timeoutMs: TIMEOUT_MS };
  const timersBefore = countTimers(clock);
  /** Whether close() completed (the device confirmed its reset), or open failed: for the DMA check. */
  let closed = false;
  let opened = false;
  /** An honest device offering the packed ring on the modern interface: every driver takes it. */
  const opening = async (core: VirtioDriver): Promise<void> => {
    opened = true;
    // Whatever regions the (possibly lied-to) probe exposed: the window stays inside each, or refuses
    // with a typed error (caught here, so that the driver still gets closed).
    if (core.probe.kind === 'modern')
      for (const region of core.probe.sharedMemory.values()) {
        const window = new SharedMemoryWindow(bus, region);
        try {
          await window.read(0, 1);
          if (region.length > 0) await window.read(region.length - 1, 1);
        } catch (err) {
          if (!(err instanceof VirtioError)) throw err;
        }
      }
    if (packed && mode !== 'legacy' && bus.tampered === 0)
      check(hasFeature(core.features, VIRTIO_F_RING_PACKED), 'contract', () => `the ${kind} driver did not take the offered packed ring`);
  };

  const workload = async (): Promise<void> => {
    switch (kind) {
      case 'rng': {
        const drv = await RngDriver.open(bus, bdf, options);
        await opening(drv.virtio);
        try {
          for (const n of [32, 100]) {
            const bytes = await drv.read(n);
            check(bytes.length === n, 'contract', () => `rng read(${n}) returned ${bytes.length} bytes`);
          }
        } finally {
          await drv.close();
          closed = true;
        }
        break;
      }
      case 'blk': {
        const drv = await BlkDriver.open(bus, bdf, options);
        await opening(drv.virtio);
        try {
          const sectors = await drv.read(0, 2);
          check(sectors.length === 1024, 'contract', () => `blk read of 2 sectors returned ${sectors.length} bytes`);
          await drv.write(1, new Uint8Array(512).fill(0x5a));
          await drv.flush();
        } finally {
          await drv.close();
          closed = true;
        }
        break;
      }
      case 'net': {
        const drv = await VirtioNetDriver.open(bus, bdf, options);
        await opening(drv.core);
        try {
          await drv.send(new Uint8Array(60).fill(0x11));
          zoo.hostInput(0, Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, 0x56, 2, 0, 0, 0, 0, 1, 8, 0, ...new Array(46).fill(7)));
          const frame = await drv.receive(TIMEOUT_MS);
          check(frame.length <= 65_535 + 18, 'contract', () => `received a ${frame.length}-byte frame`);
        } finally {
          await drv.close();
          closed = true;
        }
        break;
      }
      default: {
        const drv = await VirtioConsoleDriver.open(bus, bdf, options);
        await opening(drv.core);
        try {
          const port = await drv.waitPort(0, TIMEOUT_MS);
          await port.write(Uint8Array.of(0x68, 0x69, 0x0a));
          zoo.hostInput(0, Uint8Array.of(0x6f, 0x6b));
          const got = await port.read(16, TIMEOUT_MS);
          check(got.length <= 16, 'contract', () => `console read(16) returned ${got.length} bytes`);
        } finally {
          await drv.close();
          closed = true;
        }
      }
    }
  };

  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    // Wall-clock time: a run that never settles is a hang however its virtual time stands.
    timer = VirtualClock.realSetTimeout(
      () => reject(new GuaranteeViolation('hang', `the ${kind} driver did not settle within ${HANG_MS} ms`)),
      HANG_MS,
    );
  });
  let outcome: unknown;
  try {
    outcome = await Promise.race([expectTypedAsync(`${kind} driver`, [VirtioError], workload), hang]);
  } catch (err) {
    // Name the driver in every finding (fuzz/known-open.ts matches on it).
    if (err instanceof GuaranteeViolation && !err.message.includes(`${kind} driver`))
      throw new GuaranteeViolation(err.kind, `${kind} driver: ${err.message.replace(/^[a-z-]+: /, '')}`, { cause: err });
    throw err;
  } finally {
    VirtualClock.realClearTimeout(timer);
    // Like a peer that went away: background loops still running see BusError from now on.
    await bus.close();
  }
  // Let stray rejections and timers surface before judging.
  for (let i = 0; i < 2; i++) await new Promise<void>((resolve) => setImmediate(resolve));
  if (bus.exhausted)
    throw new GuaranteeViolation('hang', `the ${kind} driver made more than ${OPERATION_BUDGET} bus operations (a loop that never ends)`);
  const stray = bus.hostileDma.strayRefresh;
  check(stray === undefined, 'memory-outside', () => `the ${kind} driver made a ${stray}`);
  if (unhandled.length > 0)
    throw new GuaranteeViolation('escaped-exception', `unhandled rejection in the ${kind} driver: ${describe(unhandled[0])}`);
  if (bus.tampered === 0 && bus.allocFailures === 0)
    check(
      !(outcome instanceof VirtioError) || outcome.code === 'ERR_DEVICE_TIMEOUT',
      'contract',
      () => `an honest ${kind} device failed: ${describe(outcome)}`,
    );
  // Every DMA byte back: after a close() that reset the device, or after an open that failed against
  // a device that told no lies (so the driver's own reset worked). A driver that could not confirm a
  // reset must keep what the device may still write.
  if (closed || (!opened && bus.tampered === 0)) {
    const lost = bus.dmaOutstanding;
    check(
      lost === 0,
      'memory-growth',
      () => `${lost} DMA bytes not returned after the ${kind} driver ${closed ? 'closed' : `failed to open (${describe(outcome)})`}`,
    );
  }
  const lingering = countTimers(clock) - timersBefore;
  check(lingering <= 0, 'memory-growth', () => `${lingering} timers still pending after the ${kind} driver closed`);
  // Nothing of this run is left to run (no timer, checked above; no immediate): its RAM can serve the next.
  if (!process.getActiveResourcesInfo().includes('Immediate')) rams.give(ram);
}

/** Capability id -> config offset of the honest device (the first of each id), for Adversary offsets. */
async function capabilities(bus: PciBus, fn: Bdf): Promise<Map<number, number>> {
  const caps = new Map<number, number>();
  if (((await bus.configRead(fn, PCI_STATUS, 2)) & PCI_STATUS_CAP_LIST) === 0) return caps;
  for (let at = (await bus.configRead(fn, PCI_CAPABILITY_LIST, 1)) & 0xfc, n = 0; at !== 0 && n < 48; n++) {
    const id = await bus.configRead(fn, at, 1);
    if (!caps.has(id)) caps.set(id, at);
    at = (await bus.configRead(fn, at + 1, 1)) & 0xfc;
  }
  return caps;
}

/** Timers pending: real ones (set outside the clock) and the virtual clock's. */
function countTimers(clock: VirtualClock): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length + clock.pending;
}

export function seeds(): Seed[] {
  const s: Seed[] = KINDS.flatMap((kind, k) => [
    { name: `honest-${kind}`, data: Uint8Array.of(k) },
    { name: `honest-${kind}-transitional-msix`, data: Uint8Array.of(k + KINDS.length * 4) },
    { name: `honest-${kind}-legacy`, data: Uint8Array.of(k + KINDS.length * 2) },
  ]);
  // Tamper streams: a byte >= 0xe0 replaces a read with the next u32; >= 0xd0 at a refresh rewrites used entries.
  const tamperAll = (k: number, d: number, value: number): Uint8Array => {
    const w = new InputWriter().u8(k);
    for (let i = 0; i < 200; i++) w.u8(d).u32(value);
    return w.finish();
  };
  KINDS.forEach((kind, k) => {
    s.push({ name: `${kind}-all-reads-ones`, data: tamperAll(k, 0xd0, 0) });
    s.push({ name: `${kind}-all-reads-random`, data: tamperAll(k, 0xff, 0x12345678) });
  });
  // Honest probe, then used entries naming an id never submitted / a len beyond the buffer.
  const late = (k: number, skip: number, id: number, len: number): Uint8Array => {
    const w = new InputWriter().u8(k);
    for (let i = 0; i < skip; i++) w.u8(0);
    for (let i = 0; i < 32; i++) w.u8(0xd0).u32(id).u32(len);
    return w.finish();
  };
  KINDS.forEach((kind, k) => {
    s.push({ name: `${kind}-used-id-never-submitted`, data: late(k, 150, 0x7fff, 1) });
    s.push({ name: `${kind}-used-len-beyond-buffer`, data: late(k, 150, 0, 0xffffffff) });
  });
  // The packed ring (the ring variant trailer): honest, and used descriptors (len u32, id u16,
  // flags u8: AVAIL and USED both set) naming an id never submitted / a len beyond the buffer.
  const packed = (data: Uint8Array): Uint8Array => Uint8Array.of(...data, RING_PACKED_OFFERED, ...RING_TRAILER);
  const latePacked = (k: number, id: number, len: number): Uint8Array => {
    const w = new InputWriter().u8(k);
    for (let i = 0; i < 150; i++) w.u8(0);
    for (let i = 0; i < 32; i++) w.u8(0xd0).u32(len).u16(id).u8(1);
    return w.finish();
  };
  KINDS.forEach((kind, k) => {
    s.push({ name: `packed-honest-${kind}`, data: packed(Uint8Array.of(k)) });
    s.push({ name: `packed-honest-${kind}-transitional-msix`, data: packed(Uint8Array.of(k + KINDS.length * 4)) });
    s.push({ name: `packed-${kind}-all-reads-random`, data: packed(tamperAll(k, 0xff, 0x12345678)) });
    s.push({ name: `packed-${kind}-used-id-never-submitted`, data: packed(latePacked(k, 0x7fff, 1)) });
    s.push({ name: `packed-${kind}-used-len-beyond-buffer`, data: packed(latePacked(k, 0, 0xffffffff)) });
  });
  // Shared memory regions and vendor data on the device (the variant byte's bit 1): honest, and every read lied about.
  const withCaps = (data: Uint8Array): Uint8Array => Uint8Array.of(...data, SHARED_MEMORY_AND_VENDOR_DATA, ...RING_TRAILER);
  KINDS.forEach((kind, k) => {
    s.push({ name: `shm-vendor-honest-${kind}`, data: withCaps(Uint8Array.of(k)) });
    s.push({ name: `shm-vendor-honest-${kind}-transitional-msix`, data: withCaps(Uint8Array.of(k + KINDS.length * 4)) });
    s.push({ name: `shm-vendor-${kind}-all-reads-random`, data: withCaps(tamperAll(k, 0xff, 0x12345678)) });
  });
  // With an Adversary (harness/hostile-bus.ts decodeAdversary), and no other tampering.
  const adversary = (
    k: number,
    variant: number,
    a: {
      failAlloc?: number;
      overrides?: [when: number, offset: number, value: number][];
      flood?: [at: number, count: number, len: number];
    },
  ): Uint8Array => {
    const w = new InputWriter()
      .u8(k + KINDS.length * variant)
      .u8(a.failAlloc ?? 0)
      .u8(a.overrides?.length ?? 0);
    for (const [when, offset, value] of a.overrides ?? []) w.u8(when).u16(offset).u32(value);
    const [at, count, len] = a.flood ?? [0, 0, 0];
    return w.u8(at).u16(count).u8(len).finish();
  };
  const [ALWAYS, SIZING, ADDRESS] = [0, 1, 2];
  // Variants 12-17: an Adversary and, for net, the usual small queues (6-11 give net the flood's).
  const MODERN = 2 * PLAIN_VARIANTS;
  const LEGACY = MODERN + 2;
  const MODERN_MSIX = MODERN + 3;
  KINDS.forEach((kind, k) => {
    // MSI-X table and PBA offsets (BIR 1) far beyond their BAR.
    s.push({
      name: `${kind}-msix-table-offset-outside-bar`,
      data: adversary(k, MODERN_MSIX, { overrides: [[ALWAYS, capRelative(PCI_CAP_ID_MSIX, 4), 0x7fff_f001]] }),
    });
    s.push({
      name: `${kind}-msix-pba-offset-outside-bar`,
      data: adversary(k, MODERN_MSIX, { overrides: [[ALWAYS, capRelative(PCI_CAP_ID_MSIX, 8), 0xffff_fff9]] }),
    });
    // Legacy BAR0 (I/O) sized 16 bytes: smaller than the 20-byte header.
    s.push({ name: `${kind}-legacy-bar0-smaller-than-header`, data: adversary(k, LEGACY, { overrides: [[SIZING, 0x10, 0xffff_fff1]] }) });
    // BARs found already programmed, outside every bus window: legacy BAR0 at port 0x80, the MSI-X
    // BAR1 in RAM (where DMA buffers live), the modern BAR4 (64-bit) at 4 GiB.
    s.push({
      name: `${kind}-legacy-bar0-preprogrammed-outside-window`,
      data: adversary(k, LEGACY, { overrides: [[ADDRESS, 0x10, 0x81]] }),
    });
    s.push({ name: `${kind}-msix-bar-preprogrammed-in-ram`, data: adversary(k, MODERN_MSIX, { overrides: [[ADDRESS, 0x14, 0x2000]] }) });
    s.push({ name: `${kind}-modern-bar-preprogrammed-outside-window`, data: adversary(k, MODERN, { overrides: [[ADDRESS, 0x24, 1]] }) });
    // DMA allocation failing midway through set-up: the first, the fourth, and every one from the sixth.
    for (const [name, fail] of [
      ['first', 1],
      ['fourth', 4],
      ['sixth-and-later', 0x86],
    ] as const) {
      s.push({ name: `${kind}-dma-alloc-fails-${name}`, data: adversary(k, MODERN_MSIX, { failAlloc: fail }) });
    }
  });
  // Thousands of short receive buffers returned at once: the receiveq's used.idx (the second
  // two-byte field the driver refreshes) jumps by all but one of its FLOOD_QUEUE_SIZE buffers, each
  // 3 bytes long (shorter than virtio_net_hdr).
  s.push({
    name: 'net-thousands-of-short-rx-buffers',
    data: adversary(KINDS.indexOf('net'), PLAIN_VARIANTS, { flood: [2, FLOOD_QUEUE_SIZE - 1, 3] }),
  });
  return s;
}
