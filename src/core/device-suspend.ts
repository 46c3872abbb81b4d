/**
 * 3.4 Device Suspend (VIRTIO_F_SUSPEND), the device's part of it: a gate between the device model
 * and its live queues. While the driver's suspension is under way the gate stops the model taking
 * new chains (pop finds none) and counts the chains still being processed; once the last of them is
 * used the suspension is complete. While suspended the model touches no ring at all, and
 * notifications the device would send wait for the resume (3.4.2: configuration changes are told
 * when the device resumes running). The core (device-core.ts) owns the status bits; this file owns
 * what "stopped" means for the queues, and nothing else, so a device model needs no code of its own
 * unless it holds popped chains waiting for input (see VirtioDevice.suspend).
 */

import type { DescriptorChain, DeviceQueue, RingPosition } from '../queue/types.js';

/** Where a suspension stands: the device runs, finishes its chains in flight, or is suspended. */
export type SuspendState = 'running' | 'suspending' | 'suspended';

/**
 * One life of the device's queues (activation to reset): the device core makes a new gate at every
 * activation and reset, so a late completion of an old life never counts in the new one.
 */
export class SuspendGate {
  private current: SuspendState = 'running';
  /** Chains popped through this gate's queues and not used yet. */
  private processing = 0;
  private whenSettled: (() => void) | undefined;
  /** Pops still allowed while suspending: chains a restored device model takes back (they are in flight). */
  private takeBack = 0;
  /** Queues that wanted a used buffer notification while suspended. */
  private readonly heldUsed = new Set<number>();
  /** A configuration change happened while suspended. */
  private heldConfigChange = false;

  get state(): SuspendState {
    return this.current;
  }

  /** Chains the device model is processing (popped, not used yet). */
  get inFlight(): number {
    return this.processing;
  }

  /** `queue` as the device model sees it: gated by this suspension state. */
  wrap(queue: DeviceQueue): DeviceQueue {
    return new GatedQueue(queue, this);
  }

  /**
   * Stop taking new chains, but for the next `takeBack` pops (the chains in flight a restored model
   * takes back from its rings, which hand them out first); `settled` runs once every chain in flight
   * has been used (at once when none is), after the synchronous work of the completion that used the
   * last one (its used buffer notification included, 3.4.2's SHOULD).
   */
  suspend(takeBack: number, settled: () => void): void {
    if (this.current !== 'running') return;
    this.current = 'suspending';
    this.takeBack = takeBack;
    this.processing += takeBack;
    this.whenSettled = settled;
    this.checkSettled();
  }

  /** Whether the device model may take a chain now. */
  get popAllowed(): boolean {
    return this.current === 'running' || this.takeBack > 0;
  }

  /** Back to running; returns what was held meanwhile, for the core to send now. */
  resume(): { readonly usedQueues: readonly number[]; readonly configChange: boolean } {
    const held = { usedQueues: [...this.heldUsed], configChange: this.heldConfigChange };
    this.current = 'running';
    this.takeBack = 0;
    this.whenSettled = undefined;
    this.heldUsed.clear();
    this.heldConfigChange = false;
    return held;
  }

  /**
   * A restored suspended device (nothing in flight): suspended at once, with a used buffer
   * notification for each of `queues` and a configuration change held for the resume, since the
   * snapshot does not say which were held back.
   */
  restoreSuspended(queues: readonly number[]): void {
    this.current = 'suspended';
    for (const q of queues) this.heldUsed.add(q);
    this.heldConfigChange = true;
  }

  /** Whether a used buffer notification for `queue` may go now; if not, it is held for the resume. */
  admitUsed(queue: number): boolean {
    if (this.current !== 'suspended') return true;
    this.heldUsed.add(queue);
    return false;
  }

  /** Whether a configuration change notification may go now; if not, it is held for the resume (3.4.2). */
  admitConfigChange(): boolean {
    if (this.current !== 'suspended') return true;
    this.heldConfigChange = true;
    return false;
  }

  /** @internal GatedQueue's bookkeeping. */
  popped(): void {
    if (this.current === 'running') this.processing++;
    else this.takeBack--;
  }
  /** @internal GatedQueue's bookkeeping. */
  used(): void {
    if (this.processing > 0) this.processing--;
    this.checkSettled();
  }

  private checkSettled(): void {
    if (this.current !== 'suspending' || this.processing !== 0) return;
    // A microtask: the completion's own usedBuffers() call (its notification) runs first.
    queueMicrotask(() => {
      if (this.current !== 'suspending' || this.processing !== 0) return;
      this.current = 'suspended';
      const settled = this.whenSettled;
      this.whenSettled = undefined;
      settled?.();
    });
  }
}

/** A device queue behind a {@link SuspendGate}: what a device model holds. */
export class GatedQueue implements DeviceQueue {
  constructor(
    /** The ring itself, of the negotiated format. */
    readonly ring: DeviceQueue,
    private readonly gate: SuspendGate,
  ) {}

  get index(): number {
    return this.ring.index;
  }
  get size(): number {
    return this.ring.size;
  }

  pop(): DescriptorChain | null {
    if (!this.gate.popAllowed) return null;
    const chain = this.ring.pop();
    if (chain !== null) this.gate.popped();
    return chain;
  }

  pushUsed(head: number, len: number): void {
    // Suspended, nothing is in flight: a model that still pushes must not reach the ring (3.4.2).
    if (this.gate.state === 'suspended') return;
    this.ring.pushUsed(head, len);
    this.gate.used();
  }

  needsInterrupt(): boolean {
    return this.ring.needsInterrupt();
  }

  setNotification(enabled: boolean): void {
    if (this.gate.state !== 'suspended') this.ring.setNotification(enabled);
  }

  hasAvailable(): boolean {
    return this.gate.popAllowed && this.ring.hasAvailable();
  }

  position(): RingPosition {
    return this.ring.position();
  }
}
