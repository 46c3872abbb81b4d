/**
 * A NetBackend on a stream socket speaking QEMU's `-netdev stream` / `-netdev socket` framing, as a
 * client (`connect`, QEMU's `server=off`) or a server that takes one peer at a time (`listen`,
 * `server=on`). The link is up while a peer is connected. Frames sent with no peer, or while the
 * socket already holds `maxQueuedBytes` unsent, are dropped and counted, as a wire would.
 */

import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { BusError } from '../../errors.js';
import type { NetBackend, NetBackendPort } from './backend.js';
import { encodeStreamFrame, StreamFrameDecoder } from './stream-framing.js';

/** A TCP address or a Unix socket path. */
export type StreamAddress = { readonly host?: string; readonly port: number } | { readonly path: string };

export interface StreamNetBackendOptions {
  /** Unsent bytes the socket may hold before frames are dropped. Default 1 MiB. */
  readonly maxQueuedBytes?: number;
}

export interface StreamNetBackendStats {
  txFrames: number;
  /** Frames sent with no peer or with the socket's send buffer full. */
  txDropped: number;
  rxFrames: number;
}

export class StreamNetBackend implements NetBackend {
  readonly stats: StreamNetBackendStats = { txFrames: 0, txDropped: 0, rxFrames: 0 };
  private port: NetBackendPort | undefined;
  private socket: Socket | undefined;
  private server: Server | undefined;
  private closed = false;
  private readonly maxQueuedBytes: number;

  private constructor(options: StreamNetBackendOptions) {
    this.maxQueuedBytes = options.maxQueuedBytes ?? 1 << 20;
  }

  /** Connect to a listening peer (e.g. QEMU with `-netdev stream,server=on`). */
  static async connect(address: StreamAddress, options: StreamNetBackendOptions = {}): Promise<StreamNetBackend> {
    const backend = new StreamNetBackend(options);
    const socket = 'path' in address ? createConnection(address.path) : createConnection(address.port, address.host ?? '127.0.0.1');
    try {
      await once(socket, 'connect');
    } catch (err) {
      throw new BusError(`cannot connect the stream backend to ${describe(address)}`, { cause: err });
    }
    backend.adopt(socket);
    return backend;
  }

  /** Listen for one peer at a time (e.g. QEMU with `-netdev stream,server=off`); resolves once listening. */
  static async listen(address: StreamAddress, options: StreamNetBackendOptions = {}): Promise<StreamNetBackend> {
    const backend = new StreamNetBackend(options);
    const server = createServer((socket) => {
      // One peer at a time, as QEMU's server: a second connection is refused.
      if (backend.socket || backend.closed) socket.destroy();
      else backend.adopt(socket);
    });
    backend.server = server;
    const listening = once(server, 'listening');
    if ('path' in address) server.listen(address.path);
    else server.listen(address.port, address.host ?? '127.0.0.1');
    try {
      await listening;
    } catch (err) {
      throw new BusError(`cannot listen for the stream backend on ${describe(address)}`, { cause: err });
    }
    return backend;
  }

  /** The bound TCP port of a listening backend (useful with port 0). */
  get listeningPort(): number | undefined {
    const a = this.server?.address();
    return a !== null && typeof a === 'object' ? a.port : undefined;
  }

  get connected(): boolean {
    return this.socket !== undefined;
  }

  attach(port: NetBackendPort): void {
    this.port = port;
    port.setLinkUp(this.socket !== undefined);
  }

  send(frame: Uint8Array): void {
    const socket = this.socket;
    if (!socket || socket.writableLength > this.maxQueuedBytes) {
      this.stats.txDropped++;
      return;
    }
    this.stats.txFrames++;
    // encodeStreamFrame copies the lent frame (NetBackend.send): the socket may keep what it is given.
    socket.write(encodeStreamFrame(frame));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const socket = this.socket;
    this.socket = undefined;
    if (socket) {
      const done = once(socket, 'close');
      socket.destroy();
      await done;
    }
    if (this.server) {
      const server = this.server;
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  private adopt(socket: Socket): void {
    const decoder = new StreamFrameDecoder();
    this.socket = socket;
    socket.setNoDelay?.(true);
    socket.on('data', (chunk: Buffer) => {
      let frames: Uint8Array[];
      try {
        frames = decoder.push(chunk);
      } catch {
        // A length beyond any frame: the peer is not speaking the framing; drop the connection.
        socket.destroy();
        return;
      }
      for (const frame of frames) {
        this.stats.rxFrames++;
        this.port?.receive(frame);
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      if (!this.closed) this.port?.setLinkUp(false);
    });
    this.port?.setLinkUp(true);
  }
}

function describe(address: StreamAddress): string {
  return 'path' in address ? address.path : `${address.host ?? '127.0.0.1'}:${address.port}`;
}
