/** Mutants of the event-suppression family: our rng device whose ring decides notifications wrongly. */

import type { ActivateContext, VirtioDevice, VirtioDeviceHost } from '../../../../src/core/virtio-device.js';
import { RngDevice } from '../../../../src/device/rng/rng-device.js';
import type { DeviceRingOptions } from '../../../../src/queue/rings.js';
import { bit, VIRTIO_F_NOTIFY_ON_EMPTY } from '../../../../src/spec/features.js';
import type { DescriptorChain, DeviceQueue } from '../../../../src/queue/types.js';
import {
  VIRTQ_AVAIL_ELEM_SIZE,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_AVAIL_FLAGS,
  VIRTQ_AVAIL_RING,
  VIRTQ_USED_F_NO_NOTIFY,
  VIRTQ_USED_FLAGS,
  VIRTQ_USED_IDX,
  vringNeedEvent,
} from '../../../../src/spec/ring.js';
import type { Mutant, Mutants } from './mutant.js';
import { QueueWrapper, ringMutant, rngDevice, wrapRing } from './ring-queues.js';

/** A ring whose notification decision is `decide(ours, ring)`, `ours` being the ring's own. */
class DecidingQueue extends QueueWrapper {
  /** used.idx at the previous decision. */
  lastIdx = 0;
  constructor(
    inner: DeviceQueue,
    options: DeviceRingOptions,
    private readonly decide: (ours: boolean, q: DecidingQueue) => boolean,
  ) {
    super(inner, options);
  }
  get usedIdx(): number {
    return this.options.memory.read16(this.options.areas.device + VIRTQ_USED_IDX);
  }
  get availFlags(): number {
    return this.options.memory.read16(this.options.areas.driver + VIRTQ_AVAIL_FLAGS);
  }
  get usedEvent(): number {
    return this.options.memory.read16(this.options.areas.driver + VIRTQ_AVAIL_RING + this.options.size * VIRTQ_AVAIL_ELEM_SIZE);
  }
  /** Whether used.idx crossed `event` since the previous decision. */
  crossed(event: number): boolean {
    return vringNeedEvent(event & 0xffff, this.usedIdx, this.lastIdx);
  }
  override needsInterrupt(): boolean {
    const decision = this.decide(super.needsInterrupt(), this);
    this.lastIdx = this.usedIdx;
    return decision;
  }
}

function deciding(breaks: string, decide: (ours: boolean, q: DecidingQueue) => boolean): Mutant {
  return ringMutant(
    breaks,
    rngDevice,
    wrapRing((inner, options) => new DecidingQueue(inner, options, decide)),
  );
}

/** A ring that writes `flags` into used.flags after each used element. */
function usedFlags(breaks: string, flags: number): Mutant {
  return ringMutant(
    breaks,
    rngDevice,
    wrapRing(
      (inner, options) =>
        new (class extends QueueWrapper {
          override pushUsed(head: number, len: number): void {
            super.pushUsed(head, len);
            this.options.memory.write16(this.options.areas.device + VIRTQ_USED_FLAGS, flags);
          }
        })(inner, options),
    ),
  );
}

const alwaysNotifies = deciding('notifies after every used element, whatever the driver asked', () => true);

/** Our rng offering VIRTIO_F_NOTIFY_ON_EMPTY without implementing it (ours does not offer it). */
class RngClaimingNotifyOnEmpty implements VirtioDevice {
  private readonly inner = new RngDevice();
  readonly deviceType = this.inner.deviceType;
  readonly deviceFeatures = bit(VIRTIO_F_NOTIFY_ON_EMPTY);
  readonly queueMaxSizes = this.inner.queueMaxSizes;
  readonly configSize = this.inner.configSize;
  attach(host: VirtioDeviceHost): void {
    this.inner.attach(host);
  }
  readConfig(): number {
    return this.inner.readConfig();
  }
  writeConfig(): void {}
  activate(ctx: ActivateContext): void {
    this.inner.activate(ctx);
  }
  queueNotify(index: number): void {
    this.inner.queueNotify(index);
  }
  reset(): void {
    this.inner.reset();
  }
}

export const eventSuppressionMutants: Mutants = {
  'event-suppression/notify-on-empty': {
    breaks: 'offers VIRTIO_F_NOTIFY_ON_EMPTY but notifies as if it were not negotiated',
    original: (machine) => machine.plugVirtio(new RngDevice(), { mode: 'transitional' }).bdf,
    mutant: (machine) => machine.plugVirtio(new RngClaimingNotifyOnEmpty(), { mode: 'transitional' }).bdf,
  },
  'event-suppression/used-event-ignored': deciding(
    'honours used_event without VIRTIO_F_EVENT_IDX',
    (ours, q) => ours && q.crossed(q.usedEvent),
  ),
  'event-suppression/no-interrupt-honoured': alwaysNotifies,
  'event-suppression/no-notify-before-used-event': alwaysNotifies,
  'event-suppression/notify-when-flags-zero': deciding('never notifies', () => false),
  'event-suppression/event-idx-ignores-flags': deciding(
    'honours VIRTQ_AVAIL_F_NO_INTERRUPT with VIRTIO_F_EVENT_IDX',
    (ours, q) => ours && (q.availFlags & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0,
  ),
  'event-suppression/notify-at-used-event': deciding('notifies one used element after used_event', (_ours, q) =>
    q.crossed(q.usedEvent + 1),
  ),
  'event-suppression/used-flags-values': usedFlags('writes 2 into used.flags', 2),
  'event-suppression/used-flags-zero-with-event-idx': usedFlags(
    'sets VIRTQ_USED_F_NO_NOTIFY in used.flags with VIRTIO_F_EVENT_IDX',
    VIRTQ_USED_F_NO_NOTIFY,
  ),
  'event-suppression/spurious-notifications': ringMutant(
    'takes a notification that finds the ring empty for a fault (DEVICE_NEEDS_RESET)',
    rngDevice,
    wrapRing(
      (inner, options) =>
        new (class extends QueueWrapper {
          private lastEmpty = true;
          override pop(): DescriptorChain | null {
            const chain = super.pop();
            if (chain === null && this.lastEmpty) throw new Error('mutant: a notification with nothing available');
            this.lastEmpty = chain === null;
            return chain;
          }
        })(inner, options),
    ),
  ),
};
