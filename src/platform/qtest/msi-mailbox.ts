/**
 * MSI-X delivery we can observe over qtest. A message written to the LAPIC window (0xfee00000) is
 * swallowed by QEMU's interrupt controller, so instead each (function, vector) gets a message whose
 * address is a 4-byte slot in guest RAM and whose data is a tag naming the slot; the device's
 * message write lands there, and polling the slots turns tags into interrupt events. A poll reads
 * all slots in one command and clears the ones it saw (a message arriving between the read and the
 * clear is folded into the one seen: interrupts are hints, the driver reads the used ring anyway).
 */

import type { Bdf, InterruptEvent } from '../../bus/pci-bus.js';
import { InterruptListeners } from '../../bus/interrupt-listeners.js';
import { b64readCommand, writeCommand } from './qtest-protocol.js';
import type { QtestClient } from './qtest-client.js';

/** High half of every tag: makes a slot's word non-zero and unlikely to be written by anything else. */
const MSI_TAG = 0x4d530000;
const SLOT_BYTES = 4;

type Listener = (event: InterruptEvent) => void;

export class MsiMailbox {
  private readonly slotOf = new Map<string, number>();
  private readonly slotOwner: Bdf[] = [];
  private readonly listeners = new InterruptListeners();
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private closed = false;

  /**
   * @param base guest-physical address of the slot area (guest RAM outside the DMA window)
   * @param capacity number of 4-byte slots
   * @param pollMs interval between polls while someone listens
   */
  constructor(
    private readonly client: QtestClient,
    private readonly base: number,
    private readonly capacity: number,
    private readonly pollMs: number,
  ) {}

  /** The message for `vector` of `fn`, the same one each time; undefined when the slots are used up. */
  message(fn: Bdf, vector: number): { address: number; data: number } | undefined {
    const key = `${fn}:${vector}`;
    let slot = this.slotOf.get(key);
    if (slot === undefined) {
      if (this.slotOwner.length === this.capacity) return undefined;
      slot = this.slotOwner.length;
      this.slotOwner.push(fn);
      this.slotOf.set(key, slot);
      // The slot may hold a stale tag from an earlier owner of this QEMU: start from zero.
      this.client.post(writeCommand(4, this.base + slot * SLOT_BYTES, 0));
      this.schedule();
    }
    return { address: this.base + slot * SLOT_BYTES, data: (MSI_TAG | slot) >>> 0 };
  }

  /** Deliver `fn`'s messages to `listener` until the returned function is called. */
  subscribe(fn: Bdf, listener: Listener): () => void {
    const unsubscribe = this.listeners.add(fn, listener);
    this.schedule();
    return unsubscribe;
  }

  /** Stop polling for good. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  /** Whether some listener's function has a message handed out: only then is there anything to poll. */
  private get watching(): boolean {
    return this.slotOwner.some((fn) => this.listeners.has(fn));
  }

  /** Read every slot once and deliver what arrived. Resolves when done. */
  async poll(): Promise<void> {
    const used = this.slotOwner.length;
    if (!this.watching) return;
    const reply = await this.client.request(b64readCommand(this.base, used * SLOT_BYTES));
    const bytes = Buffer.from(reply, 'base64');
    const events: Array<[Bdf, InterruptEvent]> = [];
    for (let slot = 0; slot < used && (slot + 1) * SLOT_BYTES <= bytes.length; slot++) {
      const word = bytes.readUInt32LE(slot * SLOT_BYTES);
      if (word === 0) continue;
      const address = this.base + slot * SLOT_BYTES;
      this.client.post(writeCommand(4, address, 0));
      if (word !== (MSI_TAG | slot) >>> 0) continue; // not a message we handed out
      events.push([this.slotOwner[slot]!, { kind: 'msi', address, data: word }]);
    }
    for (const [fn, event] of events) this.listeners.emit(fn, event);
  }

  private schedule(): void {
    if (this.closed || this.polling || this.timer !== undefined || !this.watching) return;
    // Unref'd: polling alone must not keep the process alive.
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.polling = true;
      this.poll()
        .catch(() => this.close()) // the client is broken; its owner reports that
        .finally(() => {
          this.polling = false;
          this.schedule();
        });
    }, this.pollMs).unref();
  }
}
