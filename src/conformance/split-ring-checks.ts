/**
 * The checks of the split-ring family (catalogued in statements/split-ring.ts): descriptor table
 * and indirect descriptor rules, used lengths, VIRTIO_F_IN_ORDER, and the legacy layout and byte
 * order through the legacy interface.
 */

import { DeviceFaultError } from '../errors.js';
import { featureSet, VIRTIO_F_INDIRECT_DESC } from '../spec/features.js';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_DESC_FLAGS, VIRTQ_DESC_SIZE } from '../spec/ring.js';
import { MockQueue } from '../testing/mock-queue.js';
import { WRITABLE_FILL, type ChainSpec, type Span } from '../testing/mock-ring.js';
import {
  chainOf,
  expectUsed,
  firstDifference,
  hex,
  needsReset,
  requestOf,
  ringApplies,
  type AddedChain,
  viaOf,
  type RingNeeds,
} from './ring-checks.js';
import { anyRequest, noRequest, writingRequest, type RingRequest } from './ring-requests.js';
import { withRing, type RingSession } from './ring-session.js';
import type { Check, CheckContext } from './statement.js';

const VIA = viaOf('split');

/** The split ring the session drives. */
function split(s: RingSession): MockQueue {
  if (!(s.ring instanceof MockQueue)) throw new TypeError('a split-ring check runs on a split ring');
  return s.ring;
}

const anyNeeds: RingNeeds = { format: 'split', request: anyRequest, kind: 'of any kind' };
const indirectNeeds: RingNeeds = { ...anyNeeds, features: [VIRTIO_F_INDIRECT_DESC] };

/** Total bytes the request's writable buffers hold. */
function writableBytes(request: RingRequest): number {
  return request.writable.reduce((n, w) => n + w, 0);
}

/** The used element for a request the device should answer as usual: there, with a plausible len, and no DEVICE_NEEDS_RESET. */
async function requireAnswered(ctx: CheckContext, s: RingSession, request: RingRequest, what: string, above = -1): Promise<void> {
  const used = await s.waitUsed(1);
  const reset = (await needsReset(s)) ? ' (DEVICE_NEEDS_RESET set)' : '';
  ctx.require(used.length === 1, `no used element for ${what}${reset}`);
  const { len } = used[0]!;
  const ok = request.writes === undefined ? len > above && len <= writableBytes(request) : len === request.writes;
  const expected = request.writes ?? `above ${above}, at most ${writableBytes(request)}`;
  ctx.require(ok && reset === '', `len ${len} for ${what} (expected ${expected})${reset}`);
}

/** 2.7.5.1: the descriptor table reads as the driver wrote it once the chains are used. */
export const noWriteDescriptorTable: Check = {
  via: VIA,
  applies: (ctx) => ringApplies(ctx, anyNeeds),
  run: (ctx: CheckContext) =>
    withRing(ctx, { format: 'split', queue: requestOf(ctx, anyNeeds).queue }, async (s) => {
      const ring = split(s);
      const spec = chainOf(requestOf(ctx, anyNeeds));
      s.add(spec);
      s.add(spec);
      const table = ring.memory.view(ring.descAddr, ring.size * VIRTQ_DESC_SIZE).slice();
      await s.kick();
      await expectUsed(s, 2);
      const now = ring.memory.view(ring.descAddr, table.length);
      const at = table.findIndex((b, i) => b !== now[i]);
      ctx.require(at < 0, `descriptor ${at >> 4} of the table at ${hex(ring.descAddr)} changed: ${firstDifference(table, now)}`);
    }),
};

/** 2.7.5.3.2: the WRITE flag of a descriptor that refers to an indirect table is ignored. */
export const indirectIgnoresWriteFlag: Check = {
  via: VIA,
  applies: (ctx) => ringApplies(ctx, indirectNeeds),
  run: (ctx: CheckContext) =>
    withRing(ctx, { format: 'split', queue: requestOf(ctx, anyNeeds).queue, accept: featureSet(VIRTIO_F_INDIRECT_DESC) }, async (s) => {
      const ring = split(s);
      const request = requestOf(ctx, anyNeeds);
      const head = s.add(chainOf(request, true));
      const at = ring.descAddr + head * VIRTQ_DESC_SIZE + VIRTQ_DESC_FLAGS;
      ring.memory.write16(at, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE);
      await s.kick();
      await requireAnswered(ctx, s, request, 'an indirect chain whose ring descriptor also has VIRTQ_DESC_F_WRITE');
    }),
};

/** The request's buffers as (bytes or size, writable) parts; a single part cut in two, so that a chain has two parts at least. */
function parts(request: RingRequest): { readonly data: Uint8Array | number; readonly writable: boolean }[] {
  const out = [
    ...request.readable.map((data) => ({ data, writable: false })),
    ...request.writable.map((data) => ({ data, writable: true })),
  ];
  if (out.length > 1) return out;
  const only = out[0]!;
  if (typeof only.data === 'number') {
    const half = Math.ceil(only.data / 2);
    return [
      { data: half, writable: true },
      { data: only.data - half, writable: true },
    ];
  }
  const half = Math.ceil(only.data.length / 2);
  return [
    { data: only.data.slice(0, half), writable: false },
    { data: only.data.slice(half), writable: false },
  ];
}

const writingIndirectNeeds: RingNeeds = {
  format: 'split',
  request: writingRequest,
  kind: 'that the device answers by writing',
  features: [VIRTIO_F_INDIRECT_DESC],
};

/**
 * 2.7.5.3.2: a chain of direct descriptors ending in one indirect descriptor is handled. Only with
 * requests the device answers by writing: what a device makes of bytes it only reads (a table
 * taken for data) is not visible, what it writes is (len past the direct part, or a block read's).
 */
export const indirectAfterChain: Check = {
  via: VIA,
  applies: (ctx) => ringApplies(ctx, writingIndirectNeeds),
  run: (ctx: CheckContext) =>
    withRing(
      ctx,
      { format: 'split', queue: requestOf(ctx, writingIndirectNeeds).queue, accept: featureSet(VIRTIO_F_INDIRECT_DESC) },
      async (s) => {
        const ring = split(s);
        const request = requestOf(ctx, writingIndirectNeeds);
        // Built by hand on a fresh ring: descriptor 0 (the first part) chains to descriptor 1, an indirect table of the rest.
        const placed = parts(request).map(({ data, writable }) => {
          const len = typeof data === 'number' ? data : data.length;
          const addr = ring.alloc(len);
          if (typeof data !== 'number') ring.memory.write(addr, data);
          return { addr, len, writable };
        });
        const rest = placed.slice(1);
        const table = ring.alloc(rest.length * VIRTQ_DESC_SIZE, VIRTQ_DESC_SIZE);
        rest.forEach((b, k) => {
          const last = k === rest.length - 1;
          const flags = (b.writable ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT);
          ring.writeDesc(table, k, { addr: b.addr, len: b.len, flags, next: last ? 0 : k + 1 });
        });
        const first = placed[0]!;
        ring.setDesc(0, {
          addr: first.addr,
          len: first.len,
          flags: (first.writable ? VIRTQ_DESC_F_WRITE : 0) | VIRTQ_DESC_F_NEXT,
          next: 1,
        });
        ring.setDesc(1, { addr: table, len: rest.length * VIRTQ_DESC_SIZE, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
        ring.pushAvail(0);
        await s.kick();
        const direct = first.writable ? first.len : 0;
        await requireAnswered(
          ctx,
          s,
          request,
          `a direct descriptor (${first.len} bytes) chained to an indirect table of ${rest.length}`,
          direct,
        );
      },
    ),
};

/** Fills of the writable buffers in the rounds of usedLenWritten. */
const FILLS = [0x5a, 0xa5, 0x3c];

/**
 * 2.7.8.2: the first `len` bytes of the writable buffers are written before used.idx moves. Three
 * rounds with a different fill each: a byte still holding the fill in every round was not written
 * (a device writing random bytes keeps a fill by chance once in 256 rounds, in all three once in 2^24).
 */
export const usedLenWritten: Check = {
  via: VIA,
  applies: (ctx) => ringApplies(ctx, { format: 'split', request: writingRequest, kind: 'that the device answers by writing' }),
  run: (ctx: CheckContext) =>
    withRing(ctx, { format: 'split', queue: writingRequest(ctx.deviceType)!.queue }, async (s) => {
      const request = writingRequest(ctx.deviceType)!;
      const rounds: { fill: number; len: number; bytes: Uint8Array }[] = [];
      for (const fill of FILLS) {
        const id = s.add(chainOf(request));
        for (const span of s.ring.buffers(id).writable) s.ring.memory.write(span.addr, new Uint8Array(span.len).fill(fill));
        await s.kick();
        const [used] = await expectUsed(s, 1);
        const { len } = used!;
        ctx.require(len <= writableBytes(request), `len ${len} beyond the ${writableBytes(request)} writable bytes`);
        rounds.push({ fill, len, bytes: s.ring.readWritten(id, len) });
      }
      const shortest = Math.min(...rounds.map((r) => r.len));
      for (let i = 0; i < shortest; i++) {
        const kept = rounds.every((r) => r.bytes[i] === r.fill);
        ctx.require(
          !kept,
          `byte ${i} of the first len bytes (len ${rounds.map((r) => r.len).join(', ')}) kept the driver's fill in every round (${FILLS.map(hex).join(', ')})`,
        );
      }
    }),
};

/** With VIRTIO_F_IN_ORDER the driver takes descriptors in ring order (2.7.5): chain k of n buffers starts at k * n. */
export function addInRingOrder(s: RingSession, spec: ChainSpec): AddedChain {
  const ring = split(s);
  const buffers = [
    ...(spec.readable ?? []).map((b) => ({ b, writable: false })),
    ...(spec.writable ?? []).map((b) => ({ b, writable: true })),
  ];
  const head = (ring.availIdx * buffers.length) & (ring.size - 1);
  const spans: Span[] = [];
  buffers.forEach(({ b, writable }, k) => {
    const len = typeof b === 'number' ? b : b.length;
    const addr = ring.alloc(len);
    if (typeof b !== 'number') ring.memory.write(addr, b);
    else ring.memory.write(addr, new Uint8Array(len).fill(WRITABLE_FILL));
    if (writable) spans.push({ addr, len });
    const last = k === buffers.length - 1;
    const id = (head + k) & (ring.size - 1);
    ring.setDesc(id, {
      addr,
      len,
      flags: (writable ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT),
      next: last ? 0 : (id + 1) & (ring.size - 1),
    });
  });
  ring.pushAvail(head);
  return { id: head, writable: spans };
}

/**
 * 2.7.2 / 2.7.3 through the legacy interface: our driver core sets a queue up in the legacy layout
 * (one area from the PFN, the used ring at the next 4096 boundary) and reads it little-endian, as
 * an x86 guest; a request must come back there, read right.
 */
export function legacyRequestCheck(what: string): Check {
  return {
    via: ['legacy'],
    applies: async (ctx) => (anyRequest(ctx.deviceType) === undefined ? noRequest(ctx.deviceType, 'of any kind') : undefined),
    run: async (ctx: CheckContext) => {
      const request = anyRequest(ctx.deviceType)!;
      const driver = await ctx.openDriver();
      await driver.negotiate(0n);
      const queue = await driver.setupQueue<number>(request.queue, { maxSize: 16 });
      await driver.driverOk();
      const dma = ctx.bus.dma;
      const out = request.readable.map((bytes) => {
        const b = dma.alloc(bytes.length, 16);
        b.bytes.set(bytes);
        return b;
      });
      const inn = request.writable.map((len) => dma.alloc(len, 16));
      try {
        queue.submit(
          out.map((b, k) => ({ addr: b.addr, len: request.readable[k]!.length })),
          inn.map((b, k) => ({ addr: b.addr, len: request.writable[k]! })),
          1,
        );
        await queue.kick();
        try {
          const [used] = await queue.waitUsed();
          ctx.note(`used element: len ${used!.len}`);
        } catch (error) {
          if (!(error instanceof DeviceFaultError) || error.code === 'ERR_DEVICE_NEEDS_RESET') throw error;
          ctx.require(false, `${what}: ${error.code}: ${error.message}`);
        }
      } finally {
        await driver.close();
        for (const b of [...out, ...inn]) dma.free(b);
      }
    },
  };
}
