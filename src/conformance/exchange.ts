/**
 * Device-type checks drive a device's queues by hand: they send what our device drivers never would
 * (an unknown request type, a sector past the end, a control command of an unknown class) and look
 * at every byte the device wrote. `liveDevice` brings a device to DRIVER_OK with chosen features and
 * queues; `exchange` puts one chain through a queue and returns what came back, with guard bytes
 * after each device-writable buffer to see writes past its end.
 */

import type { DriverQueue } from '../driver/driver-queue.js';
import type { VirtioDriver } from '../driver/virtio-driver.js';
import type { DmaBuffer } from '../memory/dma.js';
import type { CheckContext } from './statement.js';

/** A device at DRIVER_OK, with the queues a check asked for (by index). */
export interface LiveDevice {
  readonly driver: VirtioDriver;
  readonly queues: ReadonlyMap<number, DriverQueue<number>>;
}

/**
 * Open our driver core on the check's function, negotiate `wanted` (the core adds the transport bits
 * it always takes), set up `queues` (small: 16 entries at most) and set DRIVER_OK. Closed by the engine.
 */
export async function liveDevice(ctx: CheckContext, wanted: bigint, queues: readonly number[]): Promise<LiveDevice> {
  const driver = await ctx.openDriver({ ring: 'split' });
  await driver.negotiate(wanted);
  const set = new Map<number, DriverQueue<number>>();
  for (const index of queues) set.set(index, await driver.setupQueue<number>(index, { maxSize: 16 }));
  await driver.driverOk();
  return { driver, queues: set };
}

/** What the device gave back for one chain. */
export interface Exchanged {
  /** The used element's len. */
  readonly usedLen: number;
  /** Each device-writable buffer's bytes after use (untouched bytes keep the fill byte). */
  readonly written: readonly Uint8Array[];
  /** The guard bytes after each device-writable buffer (not part of the chain): the fill byte unless written past its end. */
  readonly beyond: readonly Uint8Array[];
}

export interface ExchangeOptions {
  /** What device-writable buffers hold before the device sees them (default 0xa5). */
  readonly fill?: number;
  /** Guard bytes after each device-writable buffer (default 16). */
  readonly guard?: number;
}

let nextToken = 1;

/**
 * Put one chain on `queue`: device-readable buffers holding `out`, then device-writable buffers of
 * `inLens` bytes; wait for its used element (the driver's timeout) and return it with the bytes.
 * The DMA memory goes back only once the device has used the chain (a device that never does is
 * reset by the engine, and the driver's memory with it).
 */
export async function exchange(
  driver: VirtioDriver,
  queue: DriverQueue<number>,
  out: readonly Uint8Array[],
  inLens: readonly number[],
  options: ExchangeOptions = {},
): Promise<Exchanged> {
  const dma = driver.bus.dma;
  const fill = options.fill ?? 0xa5;
  const guard = options.guard ?? 16;
  const outBufs: DmaBuffer[] = [];
  const inBufs: DmaBuffer[] = [];
  for (const bytes of out) {
    const b = dma.alloc(Math.max(bytes.length, 1), 16);
    b.bytes.set(bytes);
    await dma.flush(b.addr, bytes.length);
    outBufs.push(b);
  }
  for (const len of inLens) {
    const b = dma.alloc(len + guard, 16);
    b.bytes.fill(fill);
    await dma.flush(b.addr, len + guard);
    inBufs.push(b);
  }
  const token = nextToken++;
  queue.submit(
    outBufs.map((b, i) => ({ addr: b.addr, len: out[i]!.length })),
    inBufs.map((b, i) => ({ addr: b.addr, len: inLens[i]! })),
    token,
  );
  await queue.kick();
  let usedLen: number | undefined;
  while (usedLen === undefined) {
    for (const done of await queue.waitUsed()) if (done.token === token) usedLen = done.len;
  }
  for (const b of inBufs) await dma.refresh(b.addr, b.bytes.length);
  const written = inBufs.map((b, i) => b.bytes.slice(0, inLens[i]));
  const beyond = inBufs.map((b, i) => b.bytes.slice(inLens[i], inLens[i]! + guard));
  for (const b of [...outBufs, ...inBufs]) dma.free(b);
  return { usedLen, written, beyond };
}

/** Hex of at most 32 bytes, for evidence. */
export function hex(bytes: Uint8Array): string {
  const shown = [...bytes.subarray(0, 32)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  return bytes.length > 32 ? `${shown} ...` : shown;
}

/** The feature bits the device offers through the check's interface (the legacy one shows 32). */
export async function offeredFeatures(ctx: CheckContext): Promise<bigint> {
  return (await ctx.transport()).deviceFeatures();
}

/** `undefined` when the device offers feature `bit`, else the reason the check does not apply. */
export async function needsOffered(ctx: CheckContext, bit: number, name: string): Promise<string | undefined> {
  return ((await offeredFeatures(ctx)) >> BigInt(bit)) & 1n ? undefined : `the device does not offer ${name}`;
}

/** `ctx.require` as a plain call (an assertion signature needs annotated names at every call site). */
export function need(ctx: CheckContext, ok: boolean, found: string): void {
  ctx.require(ok, found);
}

/** A number in hex with 0x, for evidence. */
export function hexValue(n: number | bigint): string {
  return `0x${n.toString(16)}`;
}
