/**
 * Guest RAM reused between runs. A fresh ArrayBuffer per run (a new Machine's RAM) is external
 * memory to V8, and a few hundred KiB of it per input made the garbage collector run a full
 * mark-compact every few dozen inputs. A buffer is taken zero-filled, so a run sees the RAM a new
 * Machine would give it; the caller gives it back only after a run that ended cleanly (no finding,
 * no timer or immediate left: nothing of the run can still touch it), so no run reaches another's RAM.
 */
export class RamPool {
  private readonly free = new Map<number, Uint8Array>();

  /** `size` bytes of zeroed RAM: a returned buffer of that size, or a new one. */
  take(size: number): Uint8Array {
    const ram = this.free.get(size);
    if (ram === undefined) return new Uint8Array(size);
    this.free.delete(size);
    return ram.fill(0);
  }

  /** Give back RAM that no run can touch any more. */
  give(ram: Uint8Array): void {
    this.free.set(ram.byteLength, ram);
  }
}
