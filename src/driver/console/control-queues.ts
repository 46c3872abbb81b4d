/**
 * The console's control receiveq and control transmitq (5.3.6.2, VIRTIO_CONSOLE_F_MULTIPORT):
 * struct virtio_console_control messages out one at a time, and a loop taking the device's messages
 * in. What a message means for the ports is the driver's (console-driver.ts).
 */

import type { VirtioError } from '../../errors.js';
import type { DmaBuffer, DmaMemory } from '../../memory/dma.js';
import * as C from '../../spec/console.js';
import { freeAll, type LentBuffers } from '../dma-buffers.js';
import { waitUsedOrIdle, type DriverQueue } from '../driver-queue.js';
import { SerialWork } from '../serial-work.js';
import { loopFault } from '../loop-fault.js';

/** See the file comment. */
export class ControlQueues {
  private readonly serial = new SerialWork();
  /** The control receiveq's buffers, freed at close. */
  private readonly buffers: DmaBuffer[] = [];
  private closed = false;
  /** Why the control receiveq loop stopped: no port can appear any more. */
  fault: VirtioError | undefined;

  constructor(
    readonly rx: DriverQueue<number>,
    private readonly tx: DriverQueue<DmaBuffer>,
    /** Where transmitted messages are lent from (they are the device's until it returns them). */
    private readonly lent: LentBuffers,
    private readonly dma: DmaMemory,
  ) {}

  /** Send one control message on the control transmitq, after every one sent before. */
  send(id: number, event: number, value: number): Promise<void> {
    const q = this.tx;
    return this.serial.run(async () => {
      // Queued before close() and run after it: lent.alloc refuses then (UsageError).
      const buf = this.lent.alloc(C.VIRTIO_CONSOLE_CONTROL_SIZE, 16);
      const dv = new DataView(buf.bytes.buffer, buf.bytes.byteOffset, C.VIRTIO_CONSOLE_CONTROL_SIZE);
      dv.setUint32(C.VIRTIO_CONSOLE_CONTROL_ID, id, true);
      dv.setUint16(C.VIRTIO_CONSOLE_CONTROL_EVENT, event, true);
      dv.setUint16(C.VIRTIO_CONSOLE_CONTROL_VALUE, value, true);
      await this.dma.flush(buf.addr, C.VIRTIO_CONSOLE_CONTROL_SIZE);
      q.submit([{ addr: buf.addr, len: C.VIRTIO_CONSOLE_CONTROL_SIZE }], [], buf);
      await q.kick();
      for (const u of await q.waitUsed()) this.lent.free(u.token);
    });
  }

  /**
   * Give `buffers` to the control receiveq and start taking the device's messages: each goes to
   * `receive`, which says whether it made sense.
   */
  async start(buffers: DmaBuffer[], receive: (bytes: Uint8Array) => Promise<boolean>): Promise<void> {
    const q = this.rx;
    for (const b of buffers) this.buffers.push(b);
    const post = (i: number): void => {
      q.submit([], [{ addr: buffers[i]!.addr, len: buffers[i]!.bytes.byteLength }], i);
    };
    for (let i = 0; i < buffers.length; i++) post(i);
    await q.kick();
    void (async () => {
      try {
        while (!this.closed) {
          const used = await waitUsedOrIdle(q);
          if (used === undefined) continue;
          for (const u of used) {
            // close() frees the control buffers while this loop awaits: never look at freed memory.
            if (this.closed) break;
            const buf = buffers[u.token]!;
            await this.dma.refresh(buf.addr, u.len);
            const sensible = await receive(buf.bytes.slice(0, u.len));
            // A buffer that carried nonsense is not given back: a device flooding nonsense runs dry.
            if (sensible && !this.closed) post(u.token);
          }
          if (!this.closed) await q.kick();
        }
      } catch (err) {
        // Only the control receiveq is broken: ports keep their data queues (and v86's device
        // returns control buffers twice), but no port can appear or change any more.
        if (!this.closed) this.fault = loopFault(err, 'control receiveq');
      }
    })();
  }

  /** The driver is closing: the loop stops looking at its buffers. */
  stop(): void {
    this.closed = true;
  }

  /** The device is reset: give the control receiveq's buffers back to DMA memory. */
  freeBuffers(): void {
    freeAll(this.dma, this.buffers);
  }
}
