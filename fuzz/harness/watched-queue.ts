/**
 * A DeviceQueue wrapper that lets the harness see what a device model does with its queue: every
 * popped chain's writable buffers become the only guest memory it may write (besides the used
 * ring), and every used element is checked against the chain it returns. Problems are recorded,
 * never thrown, because a device may catch what its queue throws.
 */

import type { DescriptorChain, DeviceQueue, RingPosition } from '../../src/queue/types.js';
import type { GuardedMemory } from '../../src/testing/guarded-memory.js';

export class WatchedQueue implements DeviceQueue {
  /** Writable bytes of each chain in flight, by head. */
  readonly inFlight = new Map<number, number>();
  readonly problems: string[] = [];
  /** Used elements the ring took (for a driver-side count of what reached it). */
  used = 0;
  /** Set once the device's reset has completed: the queue belongs to a finished life. */
  private retired = false;

  constructor(
    private readonly inner: DeviceQueue,
    private readonly mem: GuardedMemory,
  ) {}

  get index(): number {
    return this.inner.index;
  }
  get size(): number {
    return this.inner.size;
  }

  /** The reset that ended this queue's life has completed: any later pop or used element is a finding. */
  retire(): void {
    this.retired = true;
  }

  pop(): DescriptorChain | null {
    if (this.retired) this.problems.push(`queue ${this.index}: popped after the reset that ended its life completed`);
    const chain = this.inner.pop();
    if (chain === null) return null;
    this.inFlight.set(chain.head, chain.writableBytes);
    for (let i = chain.readable; i < chain.count; i++)
      this.mem.allowWrite(chain.addr(i), chain.len(i), `queue ${this.index} chain ${chain.head}`);
    return chain;
  }

  pushUsed(head: number, len: number): void {
    if (this.retired)
      this.problems.push(`queue ${this.index}: used element for head ${head} after the reset that ended its life completed`);
    const writable = this.inFlight.get(head);
    if (writable === undefined) this.problems.push(`queue ${this.index}: used element for head ${head}, which the device never popped`);
    else if (len > writable) this.problems.push(`queue ${this.index}: used len ${len} for head ${head} with ${writable} writable bytes`);
    this.inner.pushUsed(head, len);
    this.used++;
    this.inFlight.delete(head);
  }

  needsInterrupt(): boolean {
    return this.inner.needsInterrupt();
  }
  setNotification(enabled: boolean): void {
    this.inner.setNotification(enabled);
  }
  hasAvailable(): boolean {
    return this.inner.hasAvailable();
  }
  position(): RingPosition {
    return this.inner.position();
  }
}
