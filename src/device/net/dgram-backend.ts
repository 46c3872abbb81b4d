/**
 * A NetBackend on UDP, as QEMU's `-netdev dgram,local.type=inet,...,remote.type=inet,...`: one Ethernet
 * frame per datagram, no framing. Sent frames go to the configured remote; frames are accepted only
 * from that remote, so a stray datagram cannot inject traffic. UDP has no link state: the link is up.
 * Frames sent while the socket already holds `maxQueuedBytes` unsent (the kernel's send buffer is
 * full and Node queues the rest) are dropped and counted, as a wire would.
 */

import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { BusError } from '../../errors.js';
import type { NetBackend, NetBackendPort } from './backend.js';

export interface DgramEndpoint {
  /** A numeric IP address ("127.0.0.1", not "localhost"): the remote's is compared with each sender's. */
  readonly address: string;
  readonly port: number;
}

export interface DgramNetBackendOptions {
  /** Where to bind; port 0 picks a free port (see `localPort`). */
  readonly local: DgramEndpoint;
  readonly remote: DgramEndpoint;
  /** Default udp4. */
  readonly type?: 'udp4' | 'udp6';
  /** Unsent bytes the socket may hold before frames are dropped. Default 1 MiB. */
  readonly maxQueuedBytes?: number;
}

export interface DgramNetBackendStats {
  txFrames: number;
  /** Frames sent while the socket held more than maxQueuedBytes unsent. */
  txDropped: number;
  rxFrames: number;
  /** Datagrams from an address other than the remote. */
  rxForeign: number;
}

export class DgramNetBackend implements NetBackend {
  readonly stats: DgramNetBackendStats = { txFrames: 0, txDropped: 0, rxFrames: 0, rxForeign: 0 };
  private port: NetBackendPort | undefined;
  private closed = false;

  private constructor(
    private readonly socket: Socket,
    private readonly remote: DgramEndpoint,
    private readonly maxQueuedBytes: number,
  ) {
    socket.on('message', (msg: Buffer, rinfo) => {
      if (rinfo.port !== remote.port || rinfo.address !== remote.address) {
        this.stats.rxForeign++;
        return;
      }
      this.stats.rxFrames++;
      this.port?.receive(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength));
    });
    // A send to a closed port surfaces as an ICMP error on some systems; UDP loses frames anyway.
    socket.on('error', () => {});
  }

  /** Bind the local endpoint. */
  static async open(options: DgramNetBackendOptions): Promise<DgramNetBackend> {
    const socket = createSocket(options.type ?? 'udp4');
    const listening = once(socket, 'listening');
    socket.bind(options.local.port, options.local.address);
    try {
      await listening;
    } catch (err) {
      throw new BusError(`cannot bind the dgram backend to ${options.local.address}:${options.local.port}`, { cause: err });
    }
    return new DgramNetBackend(socket, options.remote, options.maxQueuedBytes ?? 1 << 20);
  }

  get localPort(): number {
    return this.socket.address().port;
  }

  attach(port: NetBackendPort): void {
    this.port = port;
  }

  send(frame: Uint8Array): void {
    if (this.closed) return;
    // Each send waiting in Node's queue holds its frame: the guest must not grow it without bound.
    if (this.socket.getSendQueueSize() > this.maxQueuedBytes) {
      this.stats.txDropped++;
      return;
    }
    this.stats.txFrames++;
    // A copy: the socket keeps what it is given until sent, and the frame is only lent (NetBackend.send).
    this.socket.send(frame.slice(), this.remote.port, this.remote.address);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}
