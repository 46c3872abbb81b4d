import { decodeFeatures, featureSet, VIRTIO_F_EVENT_IDX, VIRTIO_F_NOTIFY_ON_EMPTY } from '../../spec/features.js';
import { VIRTQ_AVAIL_F_NO_INTERRUPT } from '../../spec/ring.js';
import { MockQueue } from '../../testing/mock-queue.js';
import { chainOf, expectUsed, hex, needsReset, requestOf, ringApplies, settle, type RingNeeds, viaOf } from '../ring-checks.js';
import { anyRequest } from '../ring-requests.js';
import { withRing, type RingSession } from '../ring-session.js';
import type { Check, CheckContext, Statement } from '../statement.js';
import { NO_DEADLINE, NOT_AUDITED_YET } from '../audited-statement.js';

/** How long after the used element a check waits for a notification that should (not) come, in ms. */
const NOTIFY_WAIT_MS = 30;

const VIA = viaOf('split');

const plain: RingNeeds = { format: 'split', request: anyRequest, kind: 'of any kind' };
const withEventIdx: RingNeeds = { ...plain, features: [VIRTIO_F_EVENT_IDX] };

function split(s: RingSession): MockQueue {
  if (!(s.ring instanceof MockQueue)) throw new TypeError('an event suppression check runs on a split ring');
  return s.ring;
}

/** The driver's side of used buffer notification suppression for one request. */
interface Suppression {
  /** avail.flags. */
  readonly flags: number;
  /** used_event. */
  readonly usedEvent: number;
}

/**
 * One request (after `before` earlier ones, whose notifications are not judged) with `suppression`
 * in place; whether the device sent a used buffer notification for it.
 */
async function notifiedFor(s: RingSession, ctx: CheckContext, suppression: Suppression, before = 0): Promise<boolean> {
  const ring = split(s);
  const spec = chainOf(requestOf(ctx, plain));
  ring.setAvailFlags(suppression.flags);
  ring.setUsedEvent(suppression.usedEvent);
  for (let k = 0; k < before; k++) {
    s.add(spec);
    await s.kick();
    await expectUsed(s, 1);
  }
  await settle(s, NOTIFY_WAIT_MS);
  await s.notified(); // clears what the earlier requests caused
  s.add(spec);
  await s.kick();
  await expectUsed(s, 1);
  await settle(s, NOTIFY_WAIT_MS);
  const notified = await s.notified();
  ctx.note(
    `flags ${suppression.flags}, used_event ${suppression.usedEvent}, used.idx now ${ring.usedIdx}: ${notified ? '' : 'no '}notification`,
  );
  return notified;
}

/**
 * A check of 2.7.7.2: with EVENT_IDX negotiated or not, one request (after `before` others) under
 * `suppression`; the device must (`want` true) or should not (false) notify.
 */
function notificationCheck(eventIdx: boolean, suppression: Suppression, want: boolean, before = 0): Check {
  return featureNotificationCheck(eventIdx ? VIRTIO_F_EVENT_IDX : undefined, suppression, want, before);
}

/** notificationCheck with `feature` (EVENT_IDX, NOTIFY_ON_EMPTY) needed and negotiated, or none. */
function featureNotificationCheck(
  feature: number | undefined,
  suppression: Suppression,
  want: boolean,
  before = 0,
  via: Check['via'] = VIA,
): Check {
  const needs = feature === undefined ? plain : { ...plain, features: [feature] };
  const accept = feature === undefined ? 0n : featureSet(feature);
  const negotiated = feature === undefined ? 'no ring feature negotiated' : `${decodeFeatures(accept)} negotiated`;
  return {
    via,
    applies: (ctx) => ringApplies(ctx, needs),
    run: (ctx: CheckContext) =>
      withRing(ctx, { format: 'split', queue: requestOf(ctx, needs).queue, accept }, async (s) => {
        const notified = await notifiedFor(s, ctx, suppression, before);
        ctx.require(
          notified === want,
          `${notified ? 'a' : 'no'} used buffer notification for used.idx ${before} -> ${before + 1} with avail.flags ${suppression.flags} and used_event ${suppression.usedEvent} (${negotiated})`,
        );
      }),
  };
}

/** 2.7.10.2: used.flags as the device leaves it after requests: `allowed` values only. */
function usedFlagsCheck(eventIdx: boolean, allowed: readonly number[]): Check {
  const needs = eventIdx ? withEventIdx : plain;
  return {
    via: VIA,
    applies: (ctx) => ringApplies(ctx, needs),
    run: (ctx: CheckContext) =>
      withRing(
        ctx,
        { format: 'split', queue: requestOf(ctx, needs).queue, accept: eventIdx ? featureSet(VIRTIO_F_EVENT_IDX) : 0n },
        async (s) => {
          const ring = split(s);
          const spec = chainOf(requestOf(ctx, needs));
          const seen = new Set<number>([ring.usedFlags]);
          for (let k = 0; k < 3; k++) {
            s.add(spec);
            await s.kick();
            await expectUsed(s, 1);
            seen.add(ring.usedFlags);
          }
          const bad = [...seen].filter((f) => !allowed.includes(f));
          ctx.require(bad.length === 0, `used.flags read ${[...seen].map(hex).join(', ')}${eventIdx ? ' with EVENT_IDX negotiated' : ''}`);
        },
      ),
  };
}

/** 2.7.10.2: notifications with nothing new are harmless: nothing used, no DEVICE_NEEDS_RESET, requests still served. */
const spuriousNotification: Check = {
  via: VIA,
  applies: (ctx) => ringApplies(ctx, plain),
  run: (ctx: CheckContext) =>
    withRing(ctx, { format: 'split', queue: requestOf(ctx, plain).queue }, async (s) => {
      const ring = split(s);
      for (let k = 0; k < 3; k++) await s.kick();
      await settle(s, NOTIFY_WAIT_MS);
      const reset = await needsReset(s);
      ctx.require(
        ring.usedIdx === 0 && !reset,
        `after 3 notifications of an empty ring: used.idx ${ring.usedIdx}${reset ? ', DEVICE_NEEDS_RESET set' : ''}`,
      );
      s.add(chainOf(requestOf(ctx, plain)));
      await s.kick();
      await s.kick();
      const used = await s.waitUsed(1);
      ctx.require(
        used.length === 1,
        `no used element for a request after 3 spurious notifications${(await needsReset(s)) ? ' (DEVICE_NEEDS_RESET set)' : ''}`,
      );
    }),
};

/** used_event far ahead of the device (a value that would hold a notification back). */
const FAR = 0x4000;

/** Family 'event-suppression' (see Family in ../statement.ts). */
export const eventSuppressionStatements: readonly Statement[] = [
  {
    id: 'event-suppression/driver-avail-flags-values',
    section: '2.7.7.1',
    level: 'MUST',
    side: 'driver',
    family: 'event-suppression',
    text: 'Without VIRTIO_F_EVENT_IDX the driver sets avail.flags to 0 or 1; with it, to 0.',
    uncheckable: NOT_AUDITED_YET,
  },
  {
    id: 'event-suppression/driver-spurious-notifications',
    section: '2.7.7.1',
    level: 'MUST',
    side: 'driver',
    family: 'event-suppression',
    text: 'The driver copes with used buffer notifications it did not need.',
    uncheckable: 'how a driver copes is not visible on the bus',
  },
  {
    id: 'event-suppression/used-event-ignored',
    section: '2.7.7.2',
    level: 'MUST',
    side: 'device',
    family: 'event-suppression',
    text: 'Without VIRTIO_F_EVENT_IDX the device ignores used_event.',
    check: notificationCheck(false, { flags: 0, usedEvent: FAR }, true),
  },
  {
    id: 'event-suppression/no-interrupt-honoured',
    section: '2.7.7.2',
    level: 'SHOULD NOT',
    side: 'device',
    family: 'event-suppression',
    text: 'Without VIRTIO_F_EVENT_IDX, with avail.flags 1 (VIRTQ_AVAIL_F_NO_INTERRUPT), the device sends no used buffer notification.',
    check: notificationCheck(false, { flags: VIRTQ_AVAIL_F_NO_INTERRUPT, usedEvent: 0 }, false),
  },
  {
    id: 'event-suppression/notify-when-flags-zero',
    section: '2.7.7.2',
    level: 'MUST',
    side: 'device',
    family: 'event-suppression',
    text: 'Without VIRTIO_F_EVENT_IDX, with avail.flags 0, the device sends a used buffer notification.',
    check: notificationCheck(false, { flags: 0, usedEvent: 0 }, true),
  },
  {
    id: 'event-suppression/event-idx-ignores-flags',
    section: '2.7.7.2',
    level: 'MUST',
    side: 'device',
    family: 'event-suppression',
    text: 'With VIRTIO_F_EVENT_IDX the device ignores the low bit of avail.flags.',
    check: notificationCheck(true, { flags: VIRTQ_AVAIL_F_NO_INTERRUPT, usedEvent: 0 }, true),
  },
  {
    id: 'event-suppression/notify-at-used-event',
    section: '2.7.7.2',
    level: 'MUST',
    side: 'device',
    family: 'event-suppression',
    text: 'With VIRTIO_F_EVENT_IDX, the device notifies when it places a used element at index used_event.',
    check: notificationCheck(true, { flags: 0, usedEvent: 1 }, true, 1),
  },
  {
    id: 'event-suppression/no-notify-before-used-event',
    section: '2.7.7.2',
    level: 'SHOULD NOT',
    side: 'device',
    family: 'event-suppression',
    text: 'With VIRTIO_F_EVENT_IDX, the device sends no notification for used elements placed at other indices than used_event.',
    // Judged on the second used element: a device may notify once after it starts, when it has no
    // record of what it signalled (QEMU does: RFC 2119 lets a SHOULD NOT bend for such a reason).
    check: notificationCheck(true, { flags: 0, usedEvent: FAR }, false, 1),
  },
  {
    id: 'event-suppression/driver-used-flags-init',
    section: '2.7.10.1',
    level: 'MUST',
    side: 'driver',
    family: 'event-suppression',
    text: 'The driver zeroes used.flags when it allocates the used ring.',
    uncheckable: NOT_AUDITED_YET,
  },
  {
    id: 'event-suppression/driver-avail-event-ignored',
    section: '2.7.10.1',
    level: 'MUST',
    side: 'driver',
    family: 'event-suppression',
    text: 'Without VIRTIO_F_EVENT_IDX the driver ignores avail_event; with it, the low bit of used.flags.',
    uncheckable: "a driver's reads leave nothing to compare with what it should have ignored",
  },
  {
    id: 'event-suppression/driver-notify-when-flags-zero',
    section: '2.7.10.1',
    level: 'MUST',
    side: 'driver',
    family: 'event-suppression',
    text: 'Without VIRTIO_F_EVENT_IDX, with used.flags 0, the driver notifies after making buffers available.',
    uncheckable: NO_DEADLINE,
  },
  {
    id: 'event-suppression/driver-no-notify-when-flags-one',
    section: '2.7.10.1',
    level: 'SHOULD NOT',
    side: 'driver',
    family: 'event-suppression',
    text: 'Without VIRTIO_F_EVENT_IDX, with used.flags 1 (VIRTQ_USED_F_NO_NOTIFY), the driver does not notify.',
    uncheckable:
      "a notification racing the device's own change of the suppression field is allowed: the device cannot tell a breach from the race",
  },
  {
    id: 'event-suppression/driver-notify-at-avail-event',
    section: '2.7.10.1',
    level: 'MUST',
    side: 'driver',
    family: 'event-suppression',
    text: 'With VIRTIO_F_EVENT_IDX, the driver notifies when it places an available entry at index avail_event.',
    uncheckable: NO_DEADLINE,
  },
  {
    id: 'event-suppression/driver-no-notify-before-avail-event',
    section: '2.7.10.1',
    level: 'SHOULD NOT',
    side: 'driver',
    family: 'event-suppression',
    text: 'With VIRTIO_F_EVENT_IDX, the driver does not notify for entries placed at other indices than avail_event.',
    uncheckable:
      "a notification racing the device's own change of the suppression field is allowed: the device cannot tell a breach from the race",
  },
  {
    id: 'event-suppression/used-flags-values',
    section: '2.7.10.2',
    level: 'MUST',
    side: 'device',
    family: 'event-suppression',
    text: 'Without VIRTIO_F_EVENT_IDX the device keeps used.flags at 0 or 1.',
    check: usedFlagsCheck(false, [0, 1]),
  },
  {
    id: 'event-suppression/used-flags-zero-with-event-idx',
    section: '2.7.10.2',
    level: 'MUST',
    side: 'device',
    family: 'event-suppression',
    text: 'With VIRTIO_F_EVENT_IDX the device keeps used.flags at 0.',
    check: usedFlagsCheck(true, [0]),
  },
  {
    id: 'event-suppression/notify-on-empty',
    section: '6.3',
    level: 'MUST',
    side: 'device',
    family: 'event-suppression',
    text: 'With VIRTIO_F_NOTIFY_ON_EMPTY (legacy), the device notifies when it has used every available buffer, even with notifications suppressed.',
    check: featureNotificationCheck(VIRTIO_F_NOTIFY_ON_EMPTY, { flags: VIRTQ_AVAIL_F_NO_INTERRUPT, usedEvent: 0 }, true, 0, ['legacy']),
  },
  {
    id: 'event-suppression/spurious-notifications',
    section: '2.7.10.2',
    level: 'MUST',
    side: 'device',
    family: 'event-suppression',
    text: 'The device copes with available buffer notifications that bring nothing new.',
    check: spuriousNotification,
  },
];
