/**
 * Whether a guest access (config cycle, port or MMIO) is being served: inside one, v86's CPU is
 * mid-instruction, so an interrupt raised then must wait for an instruction boundary (intx-lines.ts).
 * Entered and left around each access (try/finally) rather than through a callback: every MMIO access
 * of the guest passes here, and a closure each would be garbage.
 */

export class GuestAccess {
  /** Depth, not a flag: an access served inside another must not end the outer one. */
  private depth = 0;

  /** A guest access is being served. */
  get active(): boolean {
    return this.depth > 0;
  }

  enter(): void {
    this.depth++;
  }

  leave(): void {
    this.depth--;
  }
}
