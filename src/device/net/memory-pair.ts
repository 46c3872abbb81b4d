/**
 * Two NetBackends joined back to back, like a cable between two NICs: what one device sends the other
 * receives. Delivery is deferred to a microtask so that a device never re-enters itself through its
 * peer while processing a queue.
 */

import type { NetBackend, NetBackendPort } from './backend.js';

class MemoryNetEnd implements NetBackend {
  peer: MemoryNetEnd | undefined;
  port: NetBackendPort | undefined;
  closed = false;

  attach(port: NetBackendPort): void {
    this.port = port;
  }

  send(frame: Uint8Array): void {
    const peer = this.peer;
    if (this.closed || !peer || peer.closed) return;
    queueMicrotask(() => {
      if (!peer.closed) peer.port?.receive(frame);
    });
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
