/**
 * Networking as a guest feels it: UDP between the project's Linux guest in v86 and one host end
 * (udp-host-end.ts), through our virtio-net and through v86's own (net_device type virtio), same
 * guest, same run, same frames, alternating. Ours has the host end as its NetBackend; v86's reaches it
 * through the emulator bus ("net0-send" out, "net0-receive" in), as v86's network adapters do.
 *
 * - guest to host: vt-udp (scripts/guest/vt-udp.c) sends for RUN_MS; the host checks every byte of
 *   every datagram and counts them between the first and the last arrival.
 * - host to guest: vt-udp receives; the host offers a datagram whenever the device has a receive
 *   buffer (ours: it took the frame without counting a drop; v86's: its receive queue has a request),
 *   for RUN_MS. The guest kernel checks each datagram against its UDP checksum, vt-udp its number and
 *   pattern bytes; the guest's count over its own clock is the figure.
 * Frames of 60 bytes (18-byte payload: packets/s) and 1514 bytes (throughput). Target (issue 17):
 * >= 1.5x v86's virtio-net in both directions.
 *
 * Our device as the product makes it, unless the environment says otherwise (to measure which receive
 * path costs the guest what; docs/benchmarks.md): VIRTIO_TS_BENCH_NET_WITHHOLD, net features it does not
 * offer ("MRG_RXBUF,CSUM"); VIRTIO_TS_BENCH_NET_QUEUE, its queue size.
 */

import { MemoryBlockBackend } from '../src/device/blk/memory-backend.js';
import type { NetBackend, NetBackendPort } from '../src/device/net/backend.js';
import { v86NetPort } from '../src/platform/v86/own-devices.js';
import * as netSpec from '../src/spec/net.js';
import { featureSet } from '../src/spec/features.js';
import { UsageError } from '../src/errors.js';
import {
  OUR_SLOTS,
  REPEATS,
  Side,
  bootComparisonGuest,
  checkGuestAssets,
  costColumns,
  guestName,
  interleaved,
  measure,
  one,
  otherNet,
  ratioText,
  run as guestRun,
  type ComparisonGuest,
  type Cost,
  type OurNetConfig,
} from './guest-machine.js';

/** The guest assets are current, and the environment's configuration of our device is one it can take. */
export function checkPeer(): void {
  checkGuestAssets();
  ourNetConfig();
}
import { UDP_PORT, UdpHostEnd, macBytes } from './udp-host-end.js';

const RUN_MS = 2000;
/** vt-udp's receiver stops after this long without a datagram. */
const IDLE_MS = 500;
const TARGET = 1.5;
/** Payload sizes: 60- and 1514-byte frames. */
const SIZES = [18, 1472] as const;
/** Frames offered per turn of the event loop at most (the emulator runs between turns). */
const BURST = 256;

/** One interface: its host end, how to hand it a frame, its guest name and addresses. */
interface Link {
  readonly side: Side;
  readonly host: UdpHostEnd;
  ifname: string;
  guestMac: Uint8Array;
  /** Hand the device one frame; false when it had no receive buffer for it (the frame is gone). */
  deliver(frame: Uint8Array): boolean;
  /** Whether a frame offered now would find a receive buffer, when the device can tell. */
  ready(): boolean;
  /** Frames dropped so far for want of a receive buffer, when the device counts them. */
  dropped?(): number;
}

interface Figure {
  guestRate: number;
  hostRate: number;
  /** Frames that arrived (at the host, or in the guest's vt-udp). */
  frames: number;
  /** Frames our device dropped for want of a receive buffer during the run. */
  dropped?: number;
  /** Times the guest halted during the run, and for how long in all. */
  halts: number;
  haltedMs: number;
  cost: Cost;
}

/** Our device's configuration from the environment (see the head of this file). */
function ourNetConfig(): OurNetConfig {
  const bits = (process.env['VIRTIO_TS_BENCH_NET_WITHHOLD'] ?? '')
    .split(',')
    .filter((n) => n !== '')
    .map((n) => {
      const bit: unknown = (netSpec as Record<string, unknown>)[`VIRTIO_NET_F_${n}`];
      if (typeof bit !== 'number') throw new UsageError(`VIRTIO_TS_BENCH_NET_WITHHOLD: no net feature VIRTIO_NET_F_${n}`);
      return bit;
    });
  const queue = process.env['VIRTIO_TS_BENCH_NET_QUEUE'];
  const size = Number(queue);
  if (queue !== undefined && !(Number.isInteger(size) && size >= 1 && size <= 32768 && (size & (size - 1)) === 0)) {
    throw new UsageError(`VIRTIO_TS_BENCH_NET_QUEUE: ${queue} is not a power of 2 from 1 to 32768`);
  }
  return { withheld: featureSet(...bits), ...(queue === undefined ? {} : { queueSize: size }) };
}

async function guestToHost(g: ComparisonGuest, link: Link, size: number): Promise<Figure> {
  link.host.reset();
  const h0 = { ...g.halts };
  const { value, cost } = await measure(link.side, () =>
    guestRun(g.guest, `udpsend ${link.host.hostAddress} ${UDP_PORT} ${size} ${RUN_MS}`),
  );
  const sent = one(value, 'udpsend');
  const a = link.host.arrivals;
  if (a.datagrams === 0 || a.bad !== 0)
    throw new Error(`${link.side.name}: ${a.datagrams} datagrams arrived, ${a.bad} bad (guest: ${sent.text})`);
  const us = Number(sent.fields['us']);
  return {
    guestRate: Number(sent.fields['datagrams']) / (us / 1e6),
    hostRate: a.datagrams / ((a.lastMs - a.firstMs) / 1000),
    frames: a.datagrams,
    halts: g.halts.count - h0.count,
    haltedMs: g.halts.ms - h0.ms,
    cost,
  };
}

async function hostToGuest(g: ComparisonGuest, link: Link, size: number): Promise<Figure> {
  let offered = 0;
  let seq = 0;
  let pumping: Promise<void> | undefined;
  const dropped0 = link.dropped?.();
  const h0 = { ...g.halts };
  const pump = (): Promise<void> =>
    new Promise((resolve) => {
      const t0 = performance.now();
      const turn = (): void => {
        if (performance.now() - t0 >= RUN_MS) return resolve();
        for (let n = 0; n < BURST && link.ready(); n++) {
          // Timed as backend inside device, as a frame the device's backend hands it would be.
          const frame = link.side.device.wrap(link.side.backend.wrap(() => link.host.toGuest(link.guestMac, seq, size)))();
          offered++;
          if (!link.deliver(frame)) break;
          seq++;
        }
        setImmediate(turn);
      };
      turn();
    });
  const { value, cost } = await measure(link.side, async () => {
    const results = await guestRun(g.guest, `udprecv ${UDP_PORT} ${IDLE_MS}`, (r) => {
      if (r.kind === 'udpready') pumping = pump();
    });
    await pumping;
    return results;
  });
  const got = one(value, 'udprecv');
  const datagrams = Number(got.fields['datagrams']);
  const us = Number(got.fields['us']);
  if (pumping === undefined || datagrams === 0 || got.fields['bad'] !== '0' || datagrams > seq) {
    throw new Error(`${link.side.name}: the host delivered ${seq} datagrams (${offered} offered), the guest reports ${got.text}`);
  }
  return {
    guestRate: datagrams / (us / 1e6),
    hostRate: seq / (RUN_MS / 1000),
    frames: datagrams,
    ...(dropped0 === undefined ? {} : { dropped: link.dropped!() - dropped0 }),
    halts: g.halts.count - h0.count,
    haltedMs: g.halts.ms - h0.ms,
    cost,
  };
}

export async function run(): Promise<void> {
  const ours: Link = {
    side: new Side('our virtio-net'),
    host: new UdpHostEnd('10.0.2.2', '10.0.2.15'),
    ifname: '',
    guestMac: new Uint8Array(6),
    deliver: () => false,
    ready: () => true,
  };
  const config = ourNetConfig();
  const theirs: Link = { ...ours, side: new Side("v86's virtio-net"), host: new UdpHostEnd('10.0.3.2', '10.0.3.15') };
  let port: NetBackendPort | undefined;
  const backend: NetBackend = {
    attach: (p) => void (port = p),
    send: ours.side.backend.wrap((frame: Uint8Array) => ours.host.fromGuest(frame)),
    close: async () => undefined,
  };
  const unused = new Side('unused');
  const g = await bootComparisonGuest(
    { blk: new MemoryBlockBackend(1 << 20), console: {}, net: backend },
    { blk: unused, console: unused, net: ours.side },
    { ide: unused, virtio_net: theirs.side, virtio_console: unused },
    new ArrayBuffer(1 << 20),
    config,
  );
  try {
    const stats = g.ourNet.stats;
    ours.dropped = () => stats.rxDropped;
    console.log(
      `our virtio-net: features ${g.ourNet.deviceFeatures.toString(16)} offered (withheld ${config.withheld.toString(16)}), queue size ${g.ourNet.queueMaxSizes[0]}`,
    );
    ours.deliver = ours.side.device.wrap((frame: Uint8Array) => {
      const dropped = stats.rxDropped;
      port!.receive(frame);
      return stats.rxDropped === dropped;
    });
    const v86Port = v86NetPort(g.emulator);
    theirs.ready = () => v86Port.rxReady();
    theirs.deliver = theirs.side.device.wrap((frame: Uint8Array) => {
      v86Port.receive(frame);
      return true;
    });
    g.emulator.add_listener(
      'net0-send',
      theirs.side.backend.wrap((frame: Uint8Array) => theirs.host.fromGuest(frame)),
    );
    ours.ifname = guestName(g.devices, OUR_SLOTS.net, 'net');
    theirs.ifname = otherNet(g.devices, OUR_SLOTS.net);
    const links: [Link, Link] = [ours, theirs];
    for (const link of links) {
      const up = one(await guestRun(g.guest, `netup ${link.ifname} ${link.host.guestAddress}/24`), 'netup');
      link.guestMac = macBytes(up.fields['mac']!);
      const hostMac = [...link.host.mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
      await guestRun(g.guest, `neigh ${link.ifname} ${link.host.hostAddress} ${hostMac}`);
    }
    const cases = SIZES.flatMap((size) => [
      { name: `guest to host, ${size + 42} B frames`, size, go: guestToHost },
      { name: `host to guest, ${size + 42} B frames`, size, go: hostToGuest },
    ]);
    const best = cases.map(() => links.map((): Figure | undefined => undefined));
    for (let repeat = 0; repeat < REPEATS; repeat++) {
      for (const [i, c] of cases.entries()) {
        for (const link of interleaved(links, repeat)) {
          const f = await c.go(g, link, c.size);
          const j = links.indexOf(link);
          const b = best[i]![j];
          const rate = c.go === guestToHost ? f.hostRate : f.guestRate;
          if (b === undefined || rate > (c.go === guestToHost ? b.hostRate : b.guestRate)) best[i]![j] = f;
        }
      }
    }
    const rows: Record<string, string>[] = [];
    for (const [i, c] of cases.entries()) {
      const [o, v] = best[i]! as [Figure, Figure];
      for (const [j, link] of links.entries()) {
        const f = best[i]![j]!;
        rows.push({
          case: c.name,
          device: `${link.side.name} (${link.ifname})`,
          'guest pkt/s': f.guestRate.toFixed(0),
          'host pkt/s': f.hostRate.toFixed(0),
          'MB/s': (((c.go === guestToHost ? f.hostRate : f.guestRate) * c.size) / 1e6).toFixed(2),
          ...costColumns(f.cost),
          // Process CPU, not the emulation column: the device clocks are wall time, inflated under load.
          frames: String(f.frames),
          'CPU µs/frame': ((f.cost.cpuMs * 1000) / f.frames).toFixed(0),
          'rx dropped': f.dropped === undefined ? '' : String(f.dropped),
          'halts / ms': `${f.halts} / ${f.haltedMs.toFixed(0)}`,
        });
      }
      const key = c.go === guestToHost ? 'hostRate' : 'guestRate';
      rows.push({
        case: c.name,
        device: "ours / v86's",
        [key === 'hostRate' ? 'host pkt/s' : 'guest pkt/s']: ratioText(o[key], v[key], TARGET),
      });
    }
    console.table(rows);
  } finally {
    await g.guest.destroy();
  }
}
