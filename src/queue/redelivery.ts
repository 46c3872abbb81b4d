/**
 * The chains a restored ring hands out again (docs/snapshots.md, "In-flight I/O"): the device model
 * of a restored function starts with none of the requests the saved one held, so the ring gives it
 * those chains again, in the order they were first popped, before any new chain from the ring. The
 * model then serves each as a new request: re-reading it from guest memory, re-submitting it to its
 * backend, completing it once.
 */

export class Redelivery {
  private heads: number[] = [];
  private at = 0;

  /** Whether a chain waits to be handed out again. */
  get pending(): boolean {
    return this.at < this.heads.length;
  }

  add(head: number): void {
    this.heads.push(head);
  }

  /** The next chain's head (only while {@link pending}). */
  next(): number {
    const head = this.heads[this.at++]!;
    if (this.at === this.heads.length) {
      this.heads = [];
      this.at = 0;
    }
    return head;
  }
}
