/**
 * Two NetBackends joined back to back, like a cable between two NICs: what one device sends the other
 * receives. A frame goes straight from the sender's transmit buffer into the receiver's receive
 * buffer, within send() (one copy, the only one: NetBackend.send lends the frame for the call), and
 * the receiver's used buffer notification is deferred to a microtask, shared by every frame of the
 * burst: a device never re-enters a driver, or itself through its peer, while processing a queue.
 */

import type { NetBackend, NetBackendPort } from './backend.js';

class MemoryNetEnd implements NetBackend {
  peer: MemoryNetEnd | undefined;
  port: NetBackendPort | undefined;
  closed = false;
  /** A notify of the peer is queued for the frames placed since the last one. */
  private notifyPending = false;

  attach(port: NetBackendPort): void {
    this.port = port;
  }

  send(frame: Uint8Array): void {
    const peer = this.peer;
    const port = peer?.port;
    if (this.closed || !peer || peer.closed || !port) return;
    port.place(frame);
    if (!this.notifyPending) {
      this.notifyPending = true;
      queueMicrotask(() => this.notifyPeer(peer));
    }
  }

  private notifyPeer(peer: MemoryNetEnd): void {
    this.notifyPending = false;
    if (!peer.closed) peer.port?.notify();
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
