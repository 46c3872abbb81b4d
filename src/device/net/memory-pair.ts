/**
 * Two NetBackends joined back to back, like a cable between two NICs: what one device sends the other
 * receives. Delivery is deferred to a microtask so that a device never re-enters itself through its
 * peer while processing a queue; the frames sent before that microtask runs go over together, as one
 * receiveBatch (one microtask and one interrupt per burst, not per frame).
 */

import type { NetBackend, NetBackendPort } from './backend.js';

class MemoryNetEnd implements NetBackend {
  peer: MemoryNetEnd | undefined;
  port: NetBackendPort | undefined;
  closed = false;
  /** Frames sent and not yet handed to the peer; a microtask is pending while it is not empty. */
  private inFlight: Uint8Array[] = [];

  attach(port: NetBackendPort): void {
    this.port = port;
  }

  send(frame: Uint8Array): void {
    const peer = this.peer;
    if (this.closed || !peer || peer.closed) return;
    if (this.inFlight.push(frame) === 1) queueMicrotask(() => this.deliver(peer));
  }

  private deliver(peer: MemoryNetEnd): void {
    const frames = this.inFlight;
    this.inFlight = [];
    if (!peer.closed) peer.port?.receiveBatch(frames);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // The other end sees the cable pulled.
    this.peer?.port?.setLinkUp(false);
  }
}

/** A linked pair of in-memory backends: give one to each device. */
export function createMemoryNetPair(): [NetBackend, NetBackend] {
  const a = new MemoryNetEnd();
  const b = new MemoryNetEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
