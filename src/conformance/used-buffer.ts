/**
 * One used buffer on demand, for the checks about what a device does when it uses a buffer (ISR,
 * INTx, MSI-X vectors): a split ring built by hand in DMA memory (not our driver, which would read
 * the ISR itself on INTx), one buffer the device completes without any outside party (an entropy
 * request, a block read of sector 0, a console or net transmission), and every interrupt event of
 * the function recorded from the moment the rig is set up.
 */

import type { DmaBuffer } from '../memory/dma.js';
import type { InterruptEvent } from '../bus/pci-bus.js';
import { VIRTIO_ID_BLOCK, VIRTIO_ID_CONSOLE, VIRTIO_ID_NET, VIRTIO_ID_RNG } from '../spec/ids.js';
import {
  availRingSize,
  descTableSize,
  legacyRingSize,
  legacyUsedOffset,
  usedRingSize,
  VIRTQ_AVAIL_IDX,
  VIRTQ_AVAIL_RING,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_DESC_SIZE,
  VIRTQ_USED_IDX,
} from '../spec/ring.js';
import { VIRTIO_CONFIG_S_DRIVER_OK } from '../spec/status.js';
import { VIRTIO_PCI_VRING_ALIGN } from '../spec/virtio-pci.js';
import type { DriverTransport } from '../transport/pci/driver-transport.js';
import { featuresOk, settle, transportOf } from './pci-support.js';
import type { CheckContext } from './statement.js';

/** Largest ring the rig builds on the modern interface (the legacy size is the device's). */
const RING_SIZE = 8;
const DATA_BYTES = 1024;
/** virtio_net_hdr: 12 bytes with VERSION_1, 10 without (legacy, no MRG_RXBUF). */
const NET_HDR_MODERN = 12;
const NET_HDR_LEGACY = 10;
const ETH_MIN_FRAME = 60;
const BLK_HDR = 16;
const SECTOR = 512;

/** A buffer as out (device-readable) and in (device-writable) lengths, carved from the data area in order. */
interface Recipe {
  readonly queue: number;
  readonly out: readonly number[];
  readonly inn: readonly number[];
}

function recipe(deviceType: number, legacy: boolean): Recipe | undefined {
  switch (deviceType) {
    case VIRTIO_ID_RNG:
      return { queue: 0, out: [], inn: [16] };
    case VIRTIO_ID_BLOCK:
      // The request header (type 0 = VIRTIO_BLK_T_IN, sector 0) is all zeroes: read sector 0.
      return { queue: 0, out: [BLK_HDR], inn: [SECTOR, 1] };
    case VIRTIO_ID_CONSOLE:
      return { queue: 1, out: [1], inn: [] };
    case VIRTIO_ID_NET:
      return { queue: 1, out: [(legacy ? NET_HDR_LEGACY : NET_HDR_MODERN) + ETH_MIN_FRAME], inn: [] };
    default:
      return undefined;
  }
}

/** A zeroed split ring set up as queue `index` (not enabled): size up to 8 on the modern interface, the device's on the legacy one. */
export interface SetUpQueue {
  readonly ring: DmaBuffer;
  readonly size: number;
  readonly ringBytes: number;
  readonly desc: number;
  readonly avail: number;
  readonly used: number;
}

/** Write queue `index`'s size and ring addresses (after FEATURES_OK); the caller frees `ring`. */
export async function setUpQueue(ctx: CheckContext, index: number): Promise<SetUpQueue> {
  const t = await transportOf(ctx);
  const legacy = t.legacyLayout;
  const max = await t.queueMaxSize(index);
  ctx.require(max > 0, `queue ${index} reads size 0`);
  let size = legacy ? max : 1;
  while (!legacy && size * 2 <= Math.min(max, RING_SIZE)) size *= 2;
  const ringBytes = legacy
    ? legacyRingSize(size, VIRTIO_PCI_VRING_ALIGN)
    : descTableSize(size) + availRingSize(size) + 4 + usedRingSize(size);
  const ring = ctx.bus.dma.alloc(ringBytes, VIRTIO_PCI_VRING_ALIGN);
  ring.bytes.fill(0);
  await ctx.bus.dma.flush(ring.addr, ringBytes);
  const desc = ring.addr;
  const avail = desc + descTableSize(size);
  const used = legacy ? desc + legacyUsedOffset(size, VIRTIO_PCI_VRING_ALIGN) : Math.ceil((avail + availRingSize(size)) / 4) * 4;
  try {
    await t.setupQueue(index, { size, descAddr: desc, driverAddr: avail, deviceAddr: used });
  } catch (error) {
    ctx.bus.dma.free(ring);
    throw error;
  }
  return { ring, size, ringBytes, desc, avail, used };
}

/** Why the rig cannot make this device use a buffer, or undefined when it can. */
export function usedBufferUnsupported(ctx: CheckContext): string | undefined {
  return recipe(ctx.deviceType, false) === undefined
    ? `no buffer the check knows how to have a device of type ${ctx.deviceType} use`
    : undefined;
}

export interface UsedBufferRig {
  readonly transport: DriverTransport;
  /** The queue the buffer goes to. */
  readonly queue: number;
  /** Interrupt events since the rig was set up. */
  readonly events: InterruptEvent[];
  /** Make the buffer available and notify; resolves once the used index moved (false: not within the timeout). */
  use(): Promise<boolean>;
  /** Stop recording, reset the device and free the memory. */
  close(): Promise<void>;
}

export interface RigOptions {
  /** Called after the queue's addresses are written and before it is enabled (e.g. to map its MSI-X vector). */
  readonly beforeEnable?: (transport: DriverTransport, queue: number) => Promise<void>;
}

/**
 * Reset, negotiate nothing but VERSION_1 (modern), set up the recipe's queue and set DRIVER_OK.
 * Call {@link usedBufferUnsupported} first (in `applies`).
 */
export async function usedBufferRig(ctx: CheckContext, options: RigOptions = {}): Promise<UsedBufferRig> {
  const t = await transportOf(ctx);
  const r = recipe(ctx.deviceType, t.legacyLayout)!;
  const events: InterruptEvent[] = [];
  const unsubscribe = ctx.bus.onInterrupt(ctx.fn, (e) => events.push(e));
  const dma = ctx.bus.dma;
  const owned: DmaBuffer[] = [];
  const close = async (): Promise<void> => {
    unsubscribe();
    await t.reset().catch(() => undefined);
    for (const b of owned.splice(0)) dma.free(b);
  };
  try {
    const accepted = await featuresOk(ctx);
    ctx.require(accepted, 'the device cleared FEATURES_OK for VERSION_1 alone');
    const q = await setUpQueue(ctx, r.queue);
    owned.push(q.ring);
    const ring = q.ring;
    const { ringBytes, desc, avail, used } = q;
    const data = dma.alloc(DATA_BYTES, 16);
    owned.push(data);
    data.bytes.fill(0);
    await options.beforeEnable?.(t, r.queue);
    await t.enableQueue(r.queue);
    await t.setStatus((await t.getStatus()) | VIRTIO_CONFIG_S_DRIVER_OK);

    // One chain: the out parts, then the in parts, consecutive in the data area.
    const view = new DataView(ring.bytes.buffer, ring.bytes.byteOffset, ring.bytes.byteLength);
    const parts = [...r.out.map((len) => ({ len, write: false })), ...r.inn.map((len) => ({ len, write: true }))];
    let at = 0;
    parts.forEach((p, i) => {
      const d = i * VIRTQ_DESC_SIZE;
      view.setBigUint64(d, BigInt(data.addr + at), true);
      view.setUint32(d + 8, p.len, true);
      view.setUint16(d + 12, (i + 1 < parts.length ? VIRTQ_DESC_F_NEXT : 0) | (p.write ? VIRTQ_DESC_F_WRITE : 0), true);
      view.setUint16(d + 14, i + 1 < parts.length ? i + 1 : 0, true);
      at += p.len;
    });
    const availOff = avail - desc;
    view.setUint16(availOff + VIRTQ_AVAIL_RING, 0, true);
    const usedOff = used - desc;

    return {
      transport: t,
      queue: r.queue,
      events,
      close,
      async use(): Promise<boolean> {
        await dma.flush(data.addr, DATA_BYTES);
        await dma.flush(ring.addr, ringBytes);
        view.setUint16(availOff + VIRTQ_AVAIL_IDX, 1, true);
        await dma.flush(avail, 4);
        await t.notify(r.queue, 1);
        const deadline = Date.now() + ctx.timeoutMs;
        for (let delay = 1; ; delay = Math.min(delay * 2, 20)) {
          await dma.refresh(used, 4);
          if (view.getUint16(usedOff + VIRTQ_USED_IDX, true) !== 0) return true;
          if (Date.now() >= deadline) return false;
          await settle(delay);
        }
      },
    };
  } catch (error) {
    await close();
    throw error;
  }
}
