/**
 * virtio-net's transmitqs (spec 5.1.9.2): each chain's virtio_net_hdr checked, its frame lent to the
 * backend (NetBackend.send), the chain used as soon as send() returns. No segmentation offload was
 * offered, so a GSO type is refused; NEEDS_CSUM is completed in the reader's own copy.
 */

import { RequestShapeError } from '../../errors.js';
import type { VirtioDeviceHost } from '../../core/virtio-device.js';
import type { DescriptorChain, DeviceQueue } from '../../queue/types.js';
import { VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_NONE } from '../../spec/net.js';
import type { NetBackend } from './backend.js';
import { completeChecksum } from './checksum.js';
import type { NetDeviceStats } from './net-stats.js';
import { NetTxReader } from './tx-request.js';

/** The transmitq of every queue pair in use, from activation until reset. */
export class NetTransmitqs {
  /** Per pair; null where the queue is not enabled or was reset (VIRTIO_F_RING_RESET). */
  private queues: (DeviceQueue | null)[] = [];
  private hdrSize = 0;
  /** VIRTIO_NET_F_CSUM as negotiated, kept as a boolean: a bigint test per frame costs more than the frame's bookkeeping. */
  private csum = false;
  /** Reads transmit chains, lending the backend a view of guest memory where it can (NetBackend.send). */
  private readonly reader = new NetTxReader();

  constructor(
    private readonly backend: NetBackend,
    private readonly stats: NetDeviceStats,
  ) {}

  /** Pairs with a transmitq place (those in use since activation). */
  get pairs(): number {
    return this.queues.length;
  }

  activate(queues: (DeviceQueue | null)[], hdrSize: number, csum: boolean): void {
    this.queues = queues;
    this.hdrSize = hdrSize;
    this.csum = csum;
  }

  reset(): void {
    this.queues = [];
    this.hdrSize = 0;
    this.csum = false;
  }

  setQueue(pair: number, queue: DeviceQueue | null): void {
    this.queues[pair] = queue;
  }

  /**
   * Transmit what transmitq `pair` holds, at most the queue size per pass (anything the driver adds
   * meanwhile comes with a notify), then one used buffer notification. Returns whether chains are
   * left, for the caller to come back for them.
   */
  process(pair: number, host: VirtioDeviceHost): boolean {
    const q = this.queues[pair];
    if (!q) return false;
    let used = 0;
    for (let n = 0; n < q.size; n++) {
      const chain = q.pop();
      if (!chain) break;
      this.transmit(chain, host);
      q.pushUsed(chain.head, 0);
      used++;
    }
    if (used > 0) host.usedBuffers(q.index);
    return q.hasAvailable();
  }

  private transmit(chain: DescriptorChain, host: VirtioDeviceHost): void {
    try {
      const tx = this.reader;
      // Lent to the backend for the send() call only: the chain is used right after it returns.
      const frame = tx.read(chain, this.hdrSize, host.memory);
      if (tx.gsoType !== VIRTIO_NET_HDR_GSO_NONE)
        throw new RequestShapeError(`gso_type ${tx.gsoType} but no segmentation offload was offered`);
      if ((tx.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0) {
        if (!this.csum) throw new RequestShapeError('NEEDS_CSUM without VIRTIO_NET_F_CSUM');
        // The reader's own copy for NEEDS_CSUM: guest memory is not written.
        completeChecksum(frame, tx.csumStart, tx.csumOffset);
      }
      this.stats.txFrames++;
      this.stats.txBytes += frame.length;
      this.backend.send(frame);
    } catch (err) {
      if (!(err instanceof RequestShapeError)) throw err;
      this.stats.txErrors++;
    }
  }
}
