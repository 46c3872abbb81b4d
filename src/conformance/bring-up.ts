/**
 * The initialisation steps (3.1.1) as separate moves, for checks that look at the device between
 * them: our driver core goes through all of them at once, a check needs to stop after any step,
 * notify before DRIVER_OK or write features the driver would not. Everything goes through the
 * check's transport (INTx and the ISR: MSI-X stays disabled, so notifications are visible as ISR
 * bits on every bus).
 */

import type { CheckContext } from './statement.js';
import type { DriverTransport } from '../transport/pci/driver-transport.js';
import { VIRTIO_F_VERSION_1, bit } from '../spec/features.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
} from '../spec/status.js';
import { VIRTIO_PCI_ISR_QUEUE } from '../spec/virtio-pci.js';
import { ProbeRing } from './probe-ring.js';
import { settle, transportOf } from './pci-support.js';
import { promptRequest, type PromptRequest } from './prompt-request.js';

export const ACK_DRIVER = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;
export const ACK_DRIVER_FEATURES_OK = ACK_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK;
export const ALL_OK = ACK_DRIVER_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK;

/** Largest queue a check sets up on the modern interface (the legacy one fixes the size). */
const PROBE_QUEUE_SIZE = 16;

/** A device after steps 1-3 (reset, ACKNOWLEDGE, DRIVER), with what it offers. */
export interface Opened {
  readonly transport: DriverTransport;
  readonly offered: bigint;
  readonly modern: boolean;
}

/** Reset, ACKNOWLEDGE, DRIVER, read the offer (3.1.1 steps 1-4), through the check's one transport. */
export async function openDevice(ctx: CheckContext): Promise<Opened> {
  const transport = await transportOf(ctx);
  await transport.reset();
  await transport.setStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE);
  await transport.setStatus(ACK_DRIVER);
  const offered = await transport.deviceFeatures();
  return { transport, offered, modern: transport.kind === 'modern' };
}

/** The smallest feature set a driver can take: VERSION_1 alone on the modern interface (6), nothing on the legacy one. */
export function minimalFeatures(opened: Opened): bigint {
  return opened.modern ? opened.offered & bit(VIRTIO_F_VERSION_1) : 0n;
}

/**
 * Write `features` and (modern) set FEATURES_OK; returns whether the device kept FEATURES_OK
 * (always true on the legacy interface, which has no such step).
 */
export async function writeFeatures(opened: Opened, features: bigint): Promise<boolean> {
  await opened.transport.setDriverFeatures(features);
  if (!opened.modern) return true;
  await opened.transport.setStatus(ACK_DRIVER_FEATURES_OK);
  return ((await opened.transport.getStatus()) & VIRTIO_CONFIG_S_FEATURES_OK) !== 0;
}

/**
 * openDevice, then `features` and (modern) VERSION_1 with FEATURES_OK; whether the device kept
 * FEATURES_OK (legacy: always, it has no such step).
 */
export async function featuresOk(ctx: CheckContext, features = 0n): Promise<boolean> {
  const opened = await openDevice(ctx);
  return writeFeatures(opened, features | (opened.modern ? bit(VIRTIO_F_VERSION_1) : 0n));
}

/** openDevice, then the minimal features; fails the check when the device refuses even those. */
export async function negotiateMinimal(ctx: CheckContext): Promise<Opened & { readonly features: bigint }> {
  const opened = await openDevice(ctx);
  const features = minimalFeatures(opened);
  const kept = await writeFeatures(opened, features);
  ctx.require(kept, `FEATURES_OK cleared for the minimal feature set 0x${features.toString(16)}`);
  return { ...opened, features };
}

/**
 * Queue `index` set up with a {@link ProbeRing} (after FEATURES_OK) and, on the modern interface,
 * enabled unless `enable` is false; the caller destroys the ring after a reset.
 */
export async function probeQueue(ctx: CheckContext, index: number, enable = true): Promise<ProbeRing> {
  const transport = await transportOf(ctx);
  const max = await transport.queueMaxSize(index);
  ctx.require(max > 0, `queue ${index} has size 0`);
  let size = max;
  if (transport.kind === 'modern') for (size = 1; size * 2 <= Math.min(max, PROBE_QUEUE_SIZE);) size *= 2;
  return ProbeRing.create(transport, ctx.bus.dma, index, size, enable);
}

/** The device type's prompt request, placed in a new ring on its queue (not yet available). */
export async function promptOnRing(
  ctx: CheckContext,
  features: bigint,
): Promise<{ readonly ring: ProbeRing; readonly request: PromptRequest; readonly head: number }> {
  const request = await promptRequest(ctx.bus.dma, ctx.deviceType, features);
  if (request === undefined) throw new RangeError(`no prompt request for device type ${ctx.deviceType}`);
  const ring = await probeQueue(ctx, request.queue);
  return { ring, request, head: ring.addChain(request.out, request.inn) };
}

/** Time a negative check gives the device, within the check's budget. */
export function settleMs(ctx: CheckContext): number {
  return Math.max(20, Math.min(150, Math.floor(ctx.timeoutMs / 10)));
}

/** Poll `read` until `done` holds of its value or the check's budget runs out; the last value. */
export async function pollFor<T>(ctx: CheckContext, read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + ctx.timeoutMs;
  for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
    const value = await read();
    if (done(value) || Date.now() >= deadline) return value;
    await settle(delay);
  }
}

/**
 * Read (and so clear) the ISR until its queue bit shows, for at most {@link settleMs}: the notification
 * of a buffer just used can trail the used index (QEMU sets the ISR after the used ring, and a loaded
 * host may run the check in between), and must not be taken for a later one.
 */
export async function clearTrailingIsr(ctx: CheckContext, transport: DriverTransport): Promise<void> {
  const deadline = Date.now() + settleMs(ctx);
  for (let delay = 1; ; delay = Math.min(delay * 2, 20)) {
    if (((await transport.readIsr()) & VIRTIO_PCI_ISR_QUEUE) !== 0 || Date.now() >= deadline) return;
    await settle(delay);
  }
}

/** A device made live with `features` (default: the minimal set) and its prompt request's queue set up, nothing available yet. */
export interface Live extends Opened {
  readonly features: bigint;
  readonly ring: ProbeRing;
  readonly request: PromptRequest;
}

/** Steps 1-8 with the minimal features (or `features`), the prompt request's queue set up, DRIVER_OK set. */
export async function goLive(ctx: CheckContext, features?: bigint): Promise<Live> {
  const opened = await openDevice(ctx);
  const accepted = features ?? minimalFeatures(opened);
  ctx.require(await writeFeatures(opened, accepted), `FEATURES_OK cleared for features 0x${accepted.toString(16)}`);
  const request = await promptRequest(ctx.bus.dma, ctx.deviceType, accepted);
  if (request === undefined) throw new RangeError(`no prompt request for device type ${ctx.deviceType}`);
  const ring = await probeQueue(ctx, request.queue);
  await opened.transport.setStatus(opened.modern ? ALL_OK : ACK_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK);
  return { ...opened, features: accepted, ring, request };
}

/** Make one prompt request available on `live`'s ring and notify; resolves to the used idx once it moved (or the last one read). */
export async function serveOne(ctx: CheckContext, live: Live, first = 0): Promise<{ readonly head: number; readonly usedIdx: number }> {
  const before = await live.ring.usedIdx();
  live.ring.recycle(first);
  const head = live.ring.addChain(live.request.out, live.request.inn);
  await live.ring.makeAvailable(head);
  await live.ring.notify(live.transport);
  const usedIdx = await pollFor(
    ctx,
    () => live.ring.usedIdx(),
    (idx) => idx !== before,
  );
  return { head, usedIdx };
}

/**
 * A guest fault on a live device: a chain on the prompt request's queue whose descriptor points
 * past the table (2.7.5.2: the driver MUST NOT, so the device is in an error state). Resolves to
 * device_status once DEVICE_NEEDS_RESET shows, or the last one read.
 */
export async function provokeError(ctx: CheckContext, live: Live): Promise<number> {
  const first = live.request.out[0] ?? live.request.inn[0]!;
  const head = live.ring.addBrokenChain(first, live.request.out.length === 0);
  await live.ring.makeAvailable(head);
  await live.ring.notify(live.transport);
  return pollFor(
    ctx,
    () => live.transport.getStatus(),
    (s) => (s & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET) !== 0,
  );
}
