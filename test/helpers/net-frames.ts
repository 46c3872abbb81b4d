/** Ethernet frames and a recording NetBackend for virtio-net tests. */

import type { NetBackend, NetBackendPort } from '../../src/device/net/backend.js';

export const BROADCAST = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);

export function mac(...bytes: number[]): Uint8Array {
  return Uint8Array.from(bytes);
}

/** An Ethernet II frame: destination, source, ethertype, then `payload` (or `len` patterned bytes). */
export function ethFrame(dst: Uint8Array, src: Uint8Array, payload: Uint8Array | number, ethertype = 0x88b5): Uint8Array {
  const body = typeof payload === 'number' ? Uint8Array.from({ length: payload }, (_, i) => (i * 7 + 3) & 0xff) : payload;
  const frame = new Uint8Array(14 + body.byteLength);
  frame.set(dst, 0);
  frame.set(src, 6);
  frame[12] = ethertype >> 8;
  frame[13] = ethertype & 0xff;
  frame.set(body, 14);
  return frame;
}

/** A NetBackend that keeps what the device sent and lets the test inject received frames. */
export class RecordingNetBackend implements NetBackend {
  readonly sent: Uint8Array[] = [];
  port: NetBackendPort | undefined;
  attach(port: NetBackendPort): void {
    this.port = port;
  }
  send(frame: Uint8Array): void {
    // A copy: the frame is lent for the call only (NetBackend.send).
    this.sent.push(frame.slice());
  }
  /** Deliver a frame to the device as if it came off the wire. */
  inject(frame: Uint8Array): void {
    if (!this.port) throw new Error('backend not attached');
    this.port.receive(frame);
  }
  async close(): Promise<void> {}
}

/** The parts, one after another, in a new array. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
