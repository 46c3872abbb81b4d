/**
 * A transitional device's two interfaces over one {@link DeviceCore} (spec 4.1.2.1, shared/DESIGN.md
 * "The decision"): the driver commits to one by its first write through it after a reset, and from
 * then on the device ignores writes through the other one, and reads that have side effects (the
 * ISR), until the next reset. A reset (device status 0) through either interface is always served.
 * Every ignored access is counted and described, so that a driver mixing the two is visible.
 */

import type { BarRegion } from '../../pci/bar-region.js';
import type { AccessSize } from '../../memory/access-size.js';
import type { DeviceCore } from '../../core/device-core.js';
import type { InterfaceRules } from '../../core/interface-rules.js';
import type { SnapshotReader } from '../../snapshot/snapshot-reader.js';
import { string, struct, u32, type SnapshotStruct } from '../../snapshot/snapshot-value.js';

/** The two virtio PCI interfaces. */
export type VirtioInterface = 'modern' | 'legacy';

/** What the arbiter must know of one interface's register block. */
export interface GuardedInterface {
  readonly kind: VirtioInterface;
  /** The BAR it lives in, for messages. */
  readonly bar: number;
  readonly region: BarRegion;
  /** The core's rules while the driver uses this interface. */
  readonly rules: InterfaceRules;
  /** Whether this write sets device status to 0 (a reset). */
  isReset(offset: number, size: AccessSize, value: number): boolean;
  /** Whether this read changes device state (the ISR read clears it). */
  readHasEffect(offset: number, size: AccessSize): boolean;
}

/** See the file comment. */
export class InterfaceArbiter {
  private committedTo: VirtioInterface | undefined;
  private ignored = 0;
  private last: string | undefined;
  private readonly listeners: ((message: string) => void)[] = [];

  constructor(private readonly core: DeviceCore) {
    core.onReset(() => (this.committedTo = undefined));
  }

  /** The interface the driver committed to since the last reset, if any. */
  get committed(): VirtioInterface | undefined {
    return this.committedTo;
  }
  /** Accesses ignored because they came through the other interface (never reset). */
  get ignoredAccesses(): number {
    return this.ignored;
  }
  /** The latest ignored access, described. */
  get lastIgnored(): string | undefined {
    return this.last;
  }
  /** Call `listener` with the description of each ignored access. */
  onIgnoredAccess(listener: (message: string) => void): void {
    this.listeners.push(listener);
  }

  /** The committed interface and the ignored-access count (docs/snapshots.md). */
  snapshot(): SnapshotStruct {
    return struct({ committed: string(this.committedTo ?? 'none'), ignored: u32(this.ignored) });
  }

  /**
   * Check `r` (SnapshotError otherwise) and return the interface it commits to with what applies it;
   * the core's rules for that interface are the caller's to set (the core is restored with them).
   */
  prepareRestore(r: SnapshotReader): { committed: VirtioInterface | undefined; apply: () => void } {
    const committed = r.choice('committed', ['none', 'modern', 'legacy']);
    const ignored = r.u32('ignored');
    const to = committed === 'none' ? undefined : committed;
    return {
      committed: to,
      apply: () => {
        this.committedTo = to;
        this.ignored = ignored;
      },
    };
  }

  /** The region to serve for `guarded`: its own, filtered by the commitment. */
  guard(guarded: GuardedInterface): BarRegion {
    return {
      read: (offset, size) => {
        if (this.committedTo !== undefined && this.committedTo !== guarded.kind && guarded.readHasEffect(offset, size)) {
          this.ignore(guarded, 'read', offset, size);
          return 0;
        }
        return guarded.region.read(offset, size);
      },
      write: (offset, size, value) => {
        if (!guarded.isReset(offset, size, value)) {
          if (this.committedTo === undefined) {
            // Only a reset device (status 0) can change rules; a device that set NEEDS_RESET on its own keeps them.
            if (this.core.status === 0) this.core.useRules(guarded.rules);
            this.committedTo = guarded.kind;
          } else if (this.committedTo !== guarded.kind) {
            this.ignore(guarded, 'write', offset, size, value);
            return;
          }
        }
        guarded.region.write(offset, size, value);
      },
    };
  }

  private ignore(guarded: GuardedInterface, op: 'read' | 'write', offset: number, size: AccessSize, value?: number): void {
    this.ignored++;
    const what = value === undefined ? `${op}${size * 8}` : `${op}${size * 8} of 0x${(value >>> 0).toString(16)}`;
    this.last = `${guarded.kind} ${what} at BAR${guarded.bar}+0x${offset.toString(16)} ignored: the driver committed to the ${this.committedTo} interface after the last reset`;
    for (const listener of this.listeners) listener(this.last);
  }
}
