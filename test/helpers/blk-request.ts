/** virtio-blk request pieces by name, with the spec's numbers written out (5.2.6), for device tests. */

/** struct virtio_blk_req header: le32 type, le32 reserved, le64 sector. */
export function blkHeader(type: number, sector: bigint | number = 0): Uint8Array {
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, type, true);
  dv.setBigUint64(8, BigInt(sector), true);
  return b;
}
