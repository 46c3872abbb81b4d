/**
 * Work run one at a time, in order: each piece starts once the one before has settled, whatever its
 * outcome (a failed send does not stop the next one). A device driver keeps one per stream of
 * requests whose order the device must see (a queue's frames, control commands).
 */
export class SerialWork {
  private tail: Promise<unknown> = Promise.resolve();

  /** Run `work` after everything run before; its own outcome is returned. */
  run<R>(work: () => Promise<R>): Promise<R> {
    const next = this.tail.then(work, work);
    this.tail = next.catch(() => undefined);
    return next;
  }
}
