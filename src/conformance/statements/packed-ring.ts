import { PVIRTQ_DESC_FLAGS, PVIRTQ_DESC_ID, PVIRTQ_DESC_SIZE, VIRTQ_DESC_F_AVAIL, VIRTQ_DESC_F_USED } from '../../spec/packed-ring.js';
import { MockPackedQueue } from '../../testing/mock-packed-queue.js';
import type { ChainSpec, UsedElem } from '../../testing/mock-ring.js';
import {
  chainOf,
  expectUsed,
  firstDifference,
  hex,
  inOrderCheck,
  noWriteReadableCheck,
  rearrangedCheck,
  requestOf,
  ringApplies,
  settle,
  type AddedChain,
  type RingNeeds,
} from '../ring-checks.js';
import { anyRequest } from '../ring-requests.js';
import { withRing, type RingSession } from '../ring-session.js';
import type { Check, CheckContext, Statement } from '../statement.js';
import { auditedStatement, NOT_AUDITED_YET } from '../audited-statement.js';
import { DRIVER_REQUIREMENTS as R } from '../../spec/driver-requirements.js';

const needs: RingNeeds = { format: 'packed', request: anyRequest, kind: 'of any kind' };
/** How long a check gives the device to use what it must not, in ms. */
const QUIET_MS = 100;

function packed(s: RingSession): MockPackedQueue {
  if (!(s.ring instanceof MockPackedQueue)) throw new TypeError('a packed-ring check runs on a packed ring');
  return s.ring;
}

/** Address of the flags of ring slot `slot`. */
function flagsAt(ring: MockPackedQueue, slot: number): number {
  return ring.descAddr + slot * PVIRTQ_DESC_SIZE + PVIRTQ_DESC_FLAGS;
}

/** The bytes of the descriptor ring, for comparison. */
function ringBytes(ring: MockPackedQueue): Uint8Array {
  return ring.memory.view(ring.descAddr, ring.size * PVIRTQ_DESC_SIZE).slice();
}

/** The ring slot where `before` and the ring now first differ, with the difference; '' when equal. */
function changedSlot(ring: MockPackedQueue, before: Uint8Array): string {
  const now = ring.memory.view(ring.descAddr, before.length);
  const at = before.findIndex((b, i) => b !== now[i]);
  return at < 0 ? '' : `ring slot ${at >> 4} changed: ${firstDifference(before, now)}`;
}

/**
 * A request made available with its head's flags replaced by `hidden` (not available for the
 * device's wrap counter, 1 on a fresh ring), and after it (with `second`) another, properly
 * available: the device must use nothing in QUIET_MS; once the head is made available, both.
 */
function hiddenHeadCheck(hidden: number, second: boolean): Check {
  return {
    via: ['modern'],
    applies: (ctx) => ringApplies(ctx, needs),
    run: (ctx: CheckContext) =>
      withRing(ctx, { format: 'packed', queue: requestOf(ctx, needs).queue }, async (s) => {
        const ring = packed(s);
        const spec = chainOf(requestOf(ctx, needs));
        s.add(spec);
        if (second) s.add(spec);
        const head = ring.memory.read16(flagsAt(ring, 0));
        ring.memory.write16(flagsAt(ring, 0), (head & ~(VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED)) | hidden);
        const before = ringBytes(ring);
        await s.kick();
        await settle(s, QUIET_MS);
        const changed = changedSlot(ring, before);
        ctx.require(
          changed === '',
          `slot 0 flags ${hex(ring.memory.read16(flagsAt(ring, 0)))} (not available to a device at wrap counter 1)${second ? ', slot after it available' : ''}: ${changed}`,
        );
        ring.memory.write16(flagsAt(ring, 0), head);
        await s.kick();
        await expectUsed(s, second ? 2 : 1);
      }),
  };
}

/**
 * 2.8.12: used descriptors go into the ring one after another, each at the slot after the
 * previous buffer's descriptors (2.8.6: the device skips a list's length), with AVAIL and USED
 * both at the device's wrap counter and a buffer ID in flight: the mock ring reads them so.
 */
const usedInOrderOfCompletion: Check = {
  via: ['modern'],
  applies: (ctx) => ringApplies(ctx, needs),
  run: (ctx: CheckContext) =>
    withRing(ctx, { format: 'packed', queue: requestOf(ctx, needs).queue }, async (s) => {
      const ring = packed(s);
      const request = requestOf(ctx, needs);
      // Chains of different lengths (every buffer cut in two in the middle one), so that a device
      // not skipping a list's length is seen.
      const halves = {
        readable: request.readable.flatMap((b) => (b.length > 1 ? [b.slice(0, b.length >> 1), b.slice(b.length >> 1)] : [b])),
        writable: request.writable.flatMap((n) => (n > 1 ? [n >> 1, n - (n >> 1)] : [n])),
      };
      const ids = [chainOf(request), halves, chainOf(request)].map((spec) => s.add(spec));
      await s.kick();
      const used: UsedElem[] = [];
      let broken = '';
      await s.poll(() => {
        try {
          used.push(...ring.readUsed());
        } catch (error) {
          broken = (error as Error).message;
        }
        return used.length >= ids.length || broken !== '';
      });
      const where = `after ${used.length} used descriptors the driver looks at slot ${ring.nextUsed} (flags ${hex(ring.memory.read16(flagsAt(ring, ring.nextUsed)))}, wrap ${ring.usedWrap})`;
      ctx.require(broken === '', `${broken}; ${where}`);
      ctx.require(used.length === ids.length, `${ids.length} buffers made available; ${where}`);
    }),
};

/** 2.8.15: a used descriptor is not changed after its USED bit flipped, while later buffers are used. */
const noChangeAfterUsed: Check = {
  via: ['modern'],
  applies: (ctx) => ringApplies(ctx, needs),
  run: (ctx: CheckContext) =>
    withRing(ctx, { format: 'packed', queue: requestOf(ctx, needs).queue }, async (s) => {
      const ring = packed(s);
      const spec = chainOf(requestOf(ctx, needs));
      s.add(spec);
      await s.kick();
      await expectUsed(s, 1);
      const first = ring.memory.view(ring.descAddr, PVIRTQ_DESC_SIZE).slice();
      s.add(spec);
      s.add(spec);
      await s.kick();
      await expectUsed(s, 2);
      const diff = firstDifference(first, ring.memory.view(ring.descAddr, PVIRTQ_DESC_SIZE));
      ctx.require(diff === '', `the used descriptor at slot 0 changed while two later buffers were used: ${diff}`);
    }),
};

/** The in-order check's chains: the mock ring already makes descriptors available in ring order. */
function addChain(s: RingSession, spec: ChainSpec): AddedChain {
  const id = s.add(spec);
  return { id, writable: s.ring.buffers(id).writable };
}

/**
 * 2.8.8: a used descriptor for a batch sits at the batch's first slot and the device skips the
 * rest, so a used descriptor of this lap inside a batch (after the slot that names the batch's
 * last buffer) shows buffers used out of order. The check's chains sit one after another from slot 0.
 */
function usedSlotsInOrder(s: RingSession, chains: readonly AddedChain[]): string {
  const ring = packed(s);
  if (chains.length === 0) return '';
  const per = chainSlots(s, chains);
  const slots = Math.min(ring.size, chains.length * per);
  const start = new Map(chains.map((c, k) => [c.id, k * per]));
  let batchEnd = 0;
  for (let slot = 0; slot < slots; slot++) {
    const flags = ring.memory.read16(flagsAt(ring, slot));
    if ((flags & (VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED)) !== (VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED)) continue;
    const id = ring.memory.read16(ring.descAddr + slot * PVIRTQ_DESC_SIZE + PVIRTQ_DESC_ID);
    const first = start.get(id);
    if (slot < batchEnd || first === undefined || first < slot)
      return `the used descriptor at slot ${slot} names buffer ${id}${first === undefined ? '' : ` (made available at slot ${first})`}, inside the batch before it`;
    batchEnd = first + per;
  }
  return '';
}

/** Ring slots each chain of the in-order check takes (all alike). */
function chainSlots(s: RingSession, chains: readonly AddedChain[]): number {
  const spec = s.ring.buffers(chains[0]!.id);
  return spec.readable.length + spec.writable.length;
}

/** Family 'packed-ring' (see Family in ../statement.ts). */
export const packedRingStatements: readonly Statement[] = [
  {
    id: 'packed-ring/in-order-use',
    section: '6',
    level: 'MUST',
    side: 'device',
    family: 'packed-ring',
    text: 'With VIRTIO_F_IN_ORDER (packed ring), the device uses buffers in the order they were made available.',
    check: inOrderCheck('packed', addChain, usedSlotsInOrder),
  },
  auditedStatement('packed-ring', R.packedAlignment),
  {
    id: 'packed-ring/process-in-ring-order',
    section: '2.8.12',
    level: 'MUST',
    side: 'device',
    family: 'packed-ring',
    text: 'The device starts processing available descriptors in ring order: nothing past one not yet available.',
    check: hiddenHeadCheck(0, true),
  },
  {
    id: 'packed-ring/used-in-completion-order',
    section: '2.8.12',
    level: 'MUST',
    side: 'device',
    family: 'packed-ring',
    text: 'The device writes used descriptors one after another in the ring, in the order the buffers complete.',
    check: usedInOrderOfCompletion,
  },
  {
    id: 'packed-ring/no-write-readable',
    section: '2.8.15',
    level: 'MUST NOT',
    side: 'device',
    family: 'packed-ring',
    text: 'The device never writes into a device-readable buffer.',
    check: noWriteReadableCheck('packed'),
  },
  {
    id: 'packed-ring/no-read-writable',
    section: '2.8.15',
    level: 'SHOULD NOT',
    side: 'device',
    family: 'packed-ring',
    text: 'The device does not read device-writable buffers.',
    uncheckable: "a device's reads of guest memory leave no trace the driver side can see",
  },
  {
    id: 'packed-ring/use-only-available',
    section: '2.8.15',
    level: 'MUST NOT',
    side: 'device',
    family: 'packed-ring',
    text: 'The device uses a descriptor only once its VIRTQ_DESC_F_AVAIL bit shows it available for the current lap.',
    check: hiddenHeadCheck(VIRTQ_DESC_F_USED, false),
  },
  {
    id: 'packed-ring/no-change-after-used',
    section: '2.8.15',
    level: 'MUST NOT',
    side: 'device',
    family: 'packed-ring',
    text: 'The device never changes a descriptor after flipping its VIRTQ_DESC_F_USED bit.',
    check: noChangeAfterUsed,
  },
  {
    id: 'packed-ring/driver-change-only-used',
    section: '2.8.16',
    level: 'MUST NOT',
    side: 'driver',
    family: 'packed-ring',
    text: 'The driver changes a descriptor only after seeing its VIRTQ_DESC_F_USED bit flip.',
    uncheckable:
      'a descriptor made available again under a buffer ID the device still holds is audited as initialization/exposed-buffers-unchanged; a change between two device reads of memory is invisible to it',
  },
  {
    id: 'packed-ring/driver-no-change-after-avail',
    section: '2.8.16',
    level: 'MUST NOT',
    side: 'driver',
    family: 'packed-ring',
    text: 'The driver never changes a descriptor after flipping its VIRTQ_DESC_F_AVAIL bit.',
    uncheckable:
      'the device reads a descriptor once: a change before that read looks like a descriptor written right, a change after it is never seen',
  },
  {
    id: 'packed-ring/driver-notification-next',
    section: '2.8.16',
    level: 'MUST',
    side: 'driver',
    family: 'packed-ring',
    text: 'A notification with data names the next descriptor not yet available (next_off, next_wrap).',
    uncheckable: NOT_AUDITED_YET,
  },
  {
    id: 'packed-ring/driver-list-device-limit',
    section: '2.8.17',
    level: 'MUST NOT',
    side: 'driver',
    family: 'packed-ring',
    text: 'The driver never makes a descriptor list longer than the device allows.',
    uncheckable: NOT_AUDITED_YET,
  },
  auditedStatement('packed-ring', R.packedChainLength),
  auditedStatement('packed-ring', R.packedFraming),
  {
    id: 'packed-ring/driver-list-fits',
    section: '2.8.17',
    level: 'MUST',
    side: 'driver',
    family: 'packed-ring',
    text: 'The driver makes a list available only when the ring has room for all of it.',
    uncheckable:
      'a list that does not fit overwrites descriptors the device holds: seen as a buffer ID in use (initialization/exposed-buffers-unchanged) or, once read, not at all',
  },
  {
    id: 'packed-ring/driver-list-head-last',
    section: '2.8.17',
    level: 'MUST NOT',
    side: 'driver',
    family: 'packed-ring',
    text: "The driver makes a list's first descriptor available only after the rest of the list.",
    uncheckable:
      "the order of the driver's memory writes is not visible to an emulated device, which reads the list between driver accesses",
  },
  {
    id: 'packed-ring/chain-in-order',
    section: '2.8.18',
    level: 'MUST',
    side: 'device',
    family: 'packed-ring',
    text: 'The device uses the descriptors of a VIRTQ_DESC_F_NEXT list in the order they were made available.',
    check: rearrangedCheck('packed', true),
  },
  auditedStatement('packed-ring', R.packedIndirectNegotiated),
  auditedStatement('packed-ring', R.packedIndirectFlags),
  {
    id: 'packed-ring/driver-indirect-device-limit',
    section: '2.8.19',
    level: 'MUST NOT',
    side: 'driver',
    family: 'packed-ring',
    text: 'The driver never makes an indirect chain longer than the device allows.',
    uncheckable: NOT_AUDITED_YET,
  },
  auditedStatement('packed-ring', R.packedIndirectInList),
  {
    id: 'packed-ring/driver-flags-barrier',
    section: '2.8.21.1.1',
    level: 'MUST',
    side: 'driver',
    family: 'packed-ring',
    text: "The driver makes a descriptor's contents visible before it updates its flags.",
    uncheckable: 'memory ordering is not visible to an emulated device, which runs between driver accesses',
  },
  {
    id: 'packed-ring/driver-event-barrier',
    section: '2.8.21.3.1',
    level: 'MUST',
    side: 'driver',
    family: 'packed-ring',
    text: 'The driver makes its flags visible before it reads the device event suppression structure.',
    uncheckable: 'memory ordering is not visible to an emulated device, which runs between driver accesses',
  },
];
