/** A reproducible pseudo-random byte pattern, for disks the demo and the benchmarks fill. */

/** Fill `dst` with xorshift32 words from `seed`; returns the generator state after the last word. */
export function fillPattern(dst: Uint8Array, seed: number): number {
  let x = seed | 0 || 1;
  const words = new Uint32Array(dst.buffer, dst.byteOffset, dst.byteLength >>> 2);
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return x;
}
