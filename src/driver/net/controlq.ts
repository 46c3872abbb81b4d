/**
 * The net driver's controlq (5.1.9.5): one command at a time, its class, command and
 * command-specific-data out, the device's ack back in, checked. Which commands may be sent (their
 * features) is the driver's (net-driver.ts); this file lays them out and sends them.
 */

import { DeviceFaultError } from '../../errors.js';
import type { DmaBuffer, DmaMemory } from '../../memory/dma.js';
import * as N from '../../spec/net.js';
import type { LentBuffers } from '../dma-buffers.js';
import type { DmaSpan, DriverQueue } from '../driver-queue.js';
import { SerialWork } from '../serial-work.js';
import type { Framing } from './framing.js';

/** See the file comment. */
export class Controlq {
  private readonly serial = new SerialWork();

  constructor(
    private readonly queue: DriverQueue<DmaBuffer>,
    private readonly framing: Framing,
    /** Where command buffers are lent from (they are the device's until it returns the chain). */
    private readonly lent: LentBuffers,
    private readonly dma: DmaMemory,
  ) {}

  /** A control command whose command-specific-data is `parts` (one descriptor each with legacy framing). */
  send(cls: number, cmd: number, parts: readonly Uint8Array[]): Promise<void> {
    const q = this.queue;
    return this.serial.run(async () => {
      const dma = this.dma;
      let dataBytes = 0;
      for (const part of parts) dataBytes += part.byteLength;
      // Lent until the device returns the chain: after a timeout it may still write the ack.
      const out = this.lent.alloc(N.VIRTIO_NET_CTRL_HDR_SIZE + dataBytes, 16);
      const ack = this.lent.alloc(1, 1);
      out.bytes[0] = cls;
      out.bytes[1] = cmd;
      const spans: DmaSpan[] = [{ addr: out.addr, len: N.VIRTIO_NET_CTRL_HDR_SIZE }];
      let at = N.VIRTIO_NET_CTRL_HDR_SIZE;
      for (const part of parts) {
        out.bytes.set(part, at);
        if (part.byteLength > 0) spans.push({ addr: out.addr + at, len: part.byteLength });
        at += part.byteLength;
      }
      ack.bytes[0] = 0xff;
      await dma.flush(out.addr, out.bytes.byteLength);
      await dma.flush(ack.addr, 1);
      const readable = this.framing === 'legacy' ? spans : [{ addr: out.addr, len: out.bytes.byteLength }];
      q.submit(readable, [{ addr: ack.addr, len: 1 }], out);
      await q.kick();
      const used = await q.waitUsed();
      try {
        if (used.length !== 1 || used[0]!.token !== out || used[0]!.len !== 1) {
          throw new DeviceFaultError(
            'ERR_DEVICE_USED_LEN',
            `control command ${cls}/${cmd}: device returned ${used.length} used elements, len ${used[0]?.len}`,
          );
        }
        await dma.refresh(ack.addr, 1);
        if (ack.bytes[0] !== N.VIRTIO_NET_OK)
          throw new DeviceFaultError('ERR_DEVICE_STATUS', `control command class ${cls} command ${cmd} answered ${ack.bytes[0]}`);
      } finally {
        this.lent.free(out);
        this.lent.free(ack);
      }
    });
  }
}

export function le16(v: number): Uint8Array {
  return Uint8Array.of(v & 0xff, v >> 8);
}

/** struct virtio_net_ctrl_mac for `macs`. */
export function macTable(macs: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(4 + macs.length * N.ETH_ALEN);
  new DataView(out.buffer).setUint32(0, macs.length, true);
  macs.forEach((m, i) => out.set(m.subarray(0, N.ETH_ALEN), 4 + i * N.ETH_ALEN));
  return out;
}
