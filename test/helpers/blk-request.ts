/** virtio-blk request pieces by name, with the spec's numbers written out (5.2.6), for device tests. */

import type { DriverQueue } from '../../src/driver/driver-queue.js';
import type { Machine } from '../../src/platform/machine.js';

/** struct virtio_blk_req header: le32 type, le32 reserved, le64 sector. */
export function blkHeader(type: number, sector: bigint | number = 0): Uint8Array {
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, type, true);
  dv.setBigUint64(8, BigInt(sector), true);
  return b;
}

/**
 * Submit (not kick) a 512-byte VIRTIO_BLK_T_IN (0) read of `sector` on `q` with `token` (default: the
 * sector); returns the data and status bytes (status 0xff until the device writes it).
 */
export function blkRead(m: Machine, q: DriverQueue<number>, sector: number, token = sector): { data: Uint8Array; status: Uint8Array } {
  const hdr = m.bus.dma.alloc(16, 8);
  hdr.bytes.set(blkHeader(0, sector));
  const data = m.bus.dma.alloc(512, 8);
  const st = m.bus.dma.alloc(1, 1);
  st.bytes[0] = 0xff;
  q.submit(
    [{ addr: hdr.addr, len: 16 }],
    [
      { addr: data.addr, len: 512 },
      { addr: st.addr, len: 1 },
    ],
    token,
  );
  return { data: data.bytes, status: st.bytes };
}
