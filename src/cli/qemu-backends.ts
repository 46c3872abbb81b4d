/**
 * QEMU arguments for one `-device` string with far ends this process owns, so that data can be
 * checked where it lands (probe) or the device can start at all (conformance): a file of known bytes
 * for virtio-rng, a scratch raw image for virtio-blk, a host UDP socket for virtio-net, a virtconsole
 * on a host unix socket for virtio-serial, a scratch directory for virtio-9p. A string that names its
 * own backend is passed on unchanged.
 */

import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const SCRATCH_IMAGE_BYTES = 1 << 20;

/** Far ends this command set up itself, so that data can be checked where it lands. */
export interface Backends {
  /** The raw image behind a virtio-blk we gave a scratch drive. */
  image?: string;
  /** The bytes of the file behind a virtio-rng we gave an `rng-random` backend. */
  entropy?: Uint8Array;
  /** The host UDP socket behind a virtio-net we gave a `-netdev socket`, and QEMU's end of it. */
  net?: { socket: UdpSocket; qemuPort: number };
  /** The unix socket behind the virtconsole we added to a virtio-serial, and QEMU's connection to it. */
  console?: { server: Server; peer: Promise<Socket>; received: Buffer[] };
}

/** A -device string's model and whether a property is given: "virtio-blk-pci,drive=d0". */
export function parseDevice(device: string): { model: string; has(prop: string): boolean } {
  const [model = '', ...props] = device.split(',');
  const names = new Set(props.map((p) => p.split('=')[0]));
  return { model, has: (prop) => names.has(prop) };
}

async function bindUdp(port = 0): Promise<UdpSocket> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, '127.0.0.1', () => resolve());
  });
  return socket;
}

/**
 * QEMU arguments for the device, with a backend this command owns when the user gave none: a
 * file of known bytes for virtio-rng, a scratch raw image for virtio-blk, a host UDP socket for virtio-net, a virtconsole on a host unix
 * socket for virtio-serial, a scratch directory for virtio-9p (which cannot start without one).
 */
export async function deviceArgs(device: string, scratch: string, backends: Backends, pickPort: () => Promise<number>): Promise<string[]> {
  const d = parseDevice(device);
  if (d.model === 'virtio-blk-pci' && !d.has('drive')) {
    backends.image = join(scratch, 'probe.img');
    await writeFile(backends.image, new Uint8Array(SCRATCH_IMAGE_BYTES));
    return ['-drive', `if=none,id=probe-drive,file=${backends.image},format=raw`, '-device', `${device},drive=probe-drive`];
  }
  if (d.model === 'virtio-rng-pci' && !d.has('rng')) {
    const file = join(scratch, 'entropy.bin');
    backends.entropy = Uint8Array.from({ length: 4096 }, (_, i) => (i * 151 + 7) & 0xff);
    await writeFile(file, backends.entropy);
    return ['-object', `rng-random,id=probe-rng,filename=${file}`, '-device', `${device},rng=probe-rng`];
  }
  if (d.model === 'virtio-net-pci' && !d.has('netdev')) {
    // A start retried after a port clash keeps the host socket and picks QEMU's port anew.
    const socket = backends.net?.socket ?? (await bindUdp());
    const qemuPort = await pickPort();
    backends.net = { socket, qemuPort };
    const netdev = `socket,id=probe-net,udp=127.0.0.1:${socket.address().port},localaddr=127.0.0.1:${qemuPort}`;
    return ['-netdev', netdev, '-device', `${device},netdev=probe-net`];
  }
  if (d.model === 'virtio-serial-pci' && !d.has('id')) {
    const path = join(scratch, 'console.sock');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(path, resolve));
    const received: Buffer[] = [];
    const peer = new Promise<Socket>((resolve) =>
      server.once('connection', (socket) => {
        socket.on('data', (b: Buffer) => received.push(b));
        resolve(socket);
      }),
    );
    backends.console = { server, peer, received };
    return [
      '-chardev',
      `socket,id=probe-console,path=${path}`,
      '-device',
      `${device},id=probe-serial`,
      '-device',
      'virtconsole,bus=probe-serial.0,chardev=probe-console,name=virtio-ts.probe',
    ];
  }
  if (d.model === 'virtio-9p-pci' && !d.has('fsdev')) {
    return ['-fsdev', `local,id=probe-fs,path=${scratch},security_model=none`, '-device', `${device},fsdev=probe-fs,mount_tag=probe`];
  }
  return ['-device', device];
}

/** Closes the sockets {@link deviceArgs} opened (the scratch files go with the caller's directory). */
export function releaseBackends(backends: Backends): void {
  backends.net?.socket.close();
  backends.console?.server.close();
  void backends.console?.peer.then((socket) => socket.destroy());
}
