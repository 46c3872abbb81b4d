/**
 * Shared set-up for the QEMU peer tests: one QEMU per machine per test file, closed in `after` (and
 * by the teardown hooks if the file dies first), raw disk images in a temp dir the test reads back
 * on the host, and the devices' slots fixed with `addr=` so each test knows where to look.
 */

import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Socket as StreamSocket } from 'node:net';
import { after } from 'node:test';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bdf, type Bdf } from '../../../src/bus/pci-bus.js';
import { QtestPciBus, type QtestPciBusOptions } from '../../../src/platform/qtest/qtest-pci-bus.js';
import type { QemuMachine } from '../../../src/platform/qtest/qemu-process.js';
import { qemuPeerBinary, type QemuPeer } from '../../helpers/peers.js';
import type { RingName } from '../../helpers/ring-formats.js';

export const MACHINES: readonly QemuMachine[] = ['pc', 'q35'];

/** Bus 0, device `slot`, function 0: where `-device ...,addr=SLOT` puts a device. */
export function slotBdf(slot: number): Bdf {
  return bdf(0, slot, 0);
}

/** Starts QEMU for this test file; closed when the file's tests are done. */
export async function launch(options: QtestPciBusOptions): Promise<QtestPciBus> {
  const bus = await QtestPciBus.launch(options);
  after(() => bus.close());
  return bus;
}

/**
 * Starts QEMU `version` (default: the leg's, $VIRTIO_TS_QEMU) on `machine` with one `-device` per
 * entry of `devices` (e.g. "virtio-blk-pci,drive=d4,addr=0x4,packed=on") and further `args`.
 */
export function launchQemu(
  machine: QemuMachine,
  devices: readonly string[],
  options: { readonly version?: QemuPeer; readonly args?: readonly string[] } = {},
): Promise<QtestPciBus> {
  return launch({
    machine,
    ...(options.version === undefined ? {} : { binary: qemuPeerBinary(options.version) }),
    args: [...(options.args ?? []), ...devices.flatMap((d) => ['-device', d])],
  });
}

/** A temp dir removed after the file's tests. */
export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'virtio-ts-peer-'));
  after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A zero-filled raw image of `bytes` bytes in `dir`; returns its path. */
export async function rawImage(dir: string, name: string, bytes: number): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, new Uint8Array(bytes));
  return path;
}

/** `-drive` + `-device` arguments for a virtio-blk-pci at `slot` backed by a raw image. */
export function blkArgs(slot: number, image: string, mode: string): string[] {
  const id = `d${slot}`;
  const props = mode ? `,${mode}` : '';
  return [
    '-drive',
    `if=none,id=${id},file=${image},format=raw,cache=writethrough`,
    '-device',
    `virtio-blk-pci,drive=${id},addr=0x${slot.toString(16)}${props}`,
  ];
}

/** `-device` arguments for a virtio-rng-pci at `slot`. */
export function rngArgs(slot: number, mode: string): string[] {
  const props = mode ? `,${mode}` : '';
  return ['-device', `virtio-rng-pci,addr=0x${slot.toString(16)}${props}`];
}

/**
 * The ways our drivers reach a QEMU virtio device (issue 4): modern-only, transitional through
 * either interface, legacy-only; interrupts by MSI-X (the drivers' default where the bus can
 * deliver it, as on QEMU) and, for one modern and one legacy device, INTx; and each modern way
 * again with QEMU's `packed=on`, where the driver (ring 'auto') must negotiate the packed ring (2.8),
 * plus the legacy interface of a `packed=on` transitional device, which must stay on the split ring.
 * Each entry gets its own device at `slot`. QEMU is the one `launch` runs (see QemuOptions.binary),
 * so the same modes run against each QEMU version installed.
 */
export interface DriverMode {
  readonly slot: number;
  readonly name: string;
  /** QEMU -device properties of the mode. */
  readonly props: string;
  readonly forceLegacy: boolean;
  readonly interrupts: 'auto' | 'intx';
  /** The interface the probe must choose, and the interrupt plan the driver must end up with. */
  readonly kind: 'modern' | 'legacy';
  readonly plan: 'msix-per-queue' | 'intx';
  /** The ring format the driver must end up on. */
  readonly ring: RingName;
}

/** The split-ring ways, each given its packed twin: the same device with `packed=on`, at `slot` + {@link PACKED_SLOT_OFFSET}. */
const SPLIT_MODES: readonly DriverMode[] = [
  {
    slot: 4,
    name: 'modern-only, MSI-X',
    props: 'disable-legacy=on',
    forceLegacy: false,
    interrupts: 'auto',
    kind: 'modern',
    plan: 'msix-per-queue',
    ring: 'split',
  },
  {
    slot: 5,
    name: 'modern-only, INTx',
    props: 'disable-legacy=on',
    forceLegacy: false,
    interrupts: 'intx',
    kind: 'modern',
    plan: 'intx',
    ring: 'split',
  },
  {
    slot: 6,
    name: 'transitional, modern interface',
    props: 'disable-legacy=off',
    forceLegacy: false,
    interrupts: 'auto',
    kind: 'modern',
    plan: 'msix-per-queue',
    ring: 'split',
  },
  {
    slot: 7,
    name: 'transitional, legacy interface (forceLegacy)',
    props: 'disable-legacy=off',
    forceLegacy: true,
    interrupts: 'auto',
    kind: 'legacy',
    plan: 'msix-per-queue',
    ring: 'split',
  },
  {
    slot: 8,
    name: 'legacy-only, MSI-X',
    props: 'disable-modern=on',
    forceLegacy: false,
    interrupts: 'auto',
    kind: 'legacy',
    plan: 'msix-per-queue',
    ring: 'split',
  },
  {
    slot: 9,
    name: 'legacy-only, INTx',
    props: 'disable-modern=on',
    forceLegacy: false,
    interrupts: 'intx',
    kind: 'legacy',
    plan: 'intx',
    ring: 'split',
  },
];

/** How far a packed twin's slot is from its split mode's. */
export const PACKED_SLOT_OFFSET = 8;

/**
 * Every mode of SPLIT_MODES, then its `packed=on` twin for each mode through which a transitional or
 * modern-only device is reached (a legacy-only device has no packed=on: the legacy interface cannot
 * carry it): the packed ring on the modern interface, the split ring on the legacy one.
 */
export const DRIVER_MODES: readonly DriverMode[] = [
  ...SPLIT_MODES,
  ...SPLIT_MODES.filter((m) => !m.props.includes('disable-modern=on')).map((m): DriverMode => ({
    ...m,
    slot: m.slot + PACKED_SLOT_OFFSET,
    name: `${m.name}, packed=on`,
    props: `${m.props},packed=on`,
    ring: m.kind === 'modern' ? 'packed' : 'split',
  })),
];

/** A UDP socket on 127.0.0.1 for a `-netdev socket,udp=` far end; closed after the file's tests. */
export async function udpSocket(): Promise<Socket> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  after(() => socket.close());
  return socket;
}

/** The next `count` datagrams to `socket`, or a rejection after `waitMs`. */
export function datagrams(socket: Socket, count: number, waitMs: number): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const got: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.off('message', onMessage);
      reject(new Error(`${got.length} of ${count} frames arrived at the host socket within ${waitMs} ms`));
    }, waitMs);
    const onMessage = (msg: Buffer): void => {
      got.push(msg);
      if (got.length < count) return;
      clearTimeout(timer);
      socket.off('message', onMessage);
      resolve(got);
    };
    socket.on('message', onMessage);
  });
}

/** The host end of a `-chardev socket`: a unix socket QEMU connects to, and everything it has sent. */
export interface HostEnd {
  readonly path: string;
  readonly peer: Promise<StreamSocket>;
  received: Buffer;
}

/** Listens on `name`.sock in `dir`; closed after the file's tests. */
export async function hostEnd(dir: string, name: string): Promise<HostEnd> {
  const path = join(dir, `${name}.sock`);
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(path, resolve));
  after(() => server.close());
  const end: HostEnd = {
    path,
    received: Buffer.alloc(0),
    peer: new Promise<StreamSocket>((resolve) =>
      server.once('connection', (socket) => {
        after(() => socket.destroy());
        socket.on('data', (d: Buffer) => (end.received = Buffer.concat([end.received, d])));
        resolve(socket);
      }),
    ),
  };
  return end;
}

/** Waits until the host end has received `length` bytes after offset `from`; returns them. */
export async function hostReceives(end: HostEnd, from: number, length: number, waitMs = 5000): Promise<Buffer> {
  const deadline = Date.now() + waitMs;
  while (end.received.length < from + length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  return end.received.subarray(from, from + length);
}
