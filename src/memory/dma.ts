/**
 * DMA memory as the driver half sees it (shared/DESIGN.md "Interfaces the halves meet at"): a local
 * byte image of bus memory that rings and buffers are allocated in. Here, below both the bus and
 * the rings, so that driver-side rings use it without importing the driver layer.
 */

/** Driver-visible DMA memory: a local byte image of bus memory the driver allocates rings and buffers in. */
export interface DmaBuffer {
  /** Bus address of the first byte. */
  readonly addr: number;
  /** Local bytes; changes become visible to the device after flush, device writes after refresh. */
  readonly bytes: Uint8Array;
}

export interface DmaMemory {
  /** Allocate `size` bytes aligned to `align` (a power of two). Throws when exhausted. */
  alloc(size: number, align: number): DmaBuffer;
  /** Return a buffer to the allocator. */
  free(buffer: DmaBuffer): void;
  /** Make local writes in [addr, addr + len) visible to devices (no-op in-process). */
  flush(addr: number, len: number): Promise<void>;
  /** Bring device writes in [addr, addr + len) into the local image (no-op in-process). */
  refresh(addr: number, len: number): Promise<void>;
  /**
   * True when the local bytes are the device's memory (in-process), so flush and refresh do nothing
   * and callers may skip them; absent or false means they must be called.
   */
  readonly coherent?: boolean;
}

/** A buffer in DMA memory: bus address and length in bytes. */
export interface DmaSpan {
  readonly addr: number;
  readonly len: number;
}
