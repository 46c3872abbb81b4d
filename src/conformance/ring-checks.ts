/**
 * What the ring families' checks share (split-ring, packed-ring, event-suppression): whether a ring
 * check applies to a function, waiting for used elements, comparing bytes for the evidence, and the
 * checks both ring formats state alike (readable buffers untouched, requests cut into other
 * descriptor arrangements, VIRTIO_F_IN_ORDER).
 */

import { DeviceFaultError } from '../errors.js';
import {
  decodeFeatures,
  featureSet,
  hasFeature,
  VIRTIO_F_IN_ORDER,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_RING_PACKED,
} from '../spec/features.js';
import { VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET } from '../spec/status.js';
import { WRITABLE_FILL, type ChainSpec, type Span, type UsedElem } from '../testing/mock-ring.js';
import { anyRequest, noRequest, readingRequest, type RingRequest } from './ring-requests.js';
import { withRing, type RingSession } from './ring-session.js';
import type { Check, CheckContext } from './statement.js';

export type RingFormatName = 'split' | 'packed';

export interface RingNeeds {
  readonly format: RingFormatName;
  /** Feature bits the check needs offered. */
  readonly features?: readonly number[];
  /** The request the check sends, by device type; undefined when the type has none. */
  readonly request: (deviceType: number) => RingRequest | undefined;
  /** What kind of request, for the reason when there is none. */
  readonly kind: string;
}

/** The interfaces a check of `format` runs through: the split ring's through a transitional device's legacy one too. */
export function viaOf(format: RingFormatName): Check['via'] {
  return format === 'split' ? ['modern', 'legacy'] : ['modern'];
}

/** Why a ring check does not apply to the function, or undefined. */
export async function ringApplies(ctx: CheckContext, needs: RingNeeds): Promise<string | undefined> {
  if (ctx.via === 'legacy' && needs.format === 'packed') return 'the legacy interface cannot carry the packed ring';
  const offered = await (await ctx.transport()).deviceFeatures();
  const wanted = [...(needs.format === 'packed' ? [VIRTIO_F_RING_PACKED] : []), ...(needs.features ?? [])];
  for (const bit of wanted) if (!hasFeature(offered, bit)) return `the device does not offer ${decodeFeatures(featureSet(bit))}`;
  if (needs.request(ctx.deviceType) === undefined) return noRequest(ctx.deviceType, needs.kind);
  return undefined;
}

/** `request` of `needs` for the check's device (applies() said there is one). */
export function requestOf(ctx: CheckContext, needs: RingNeeds): RingRequest {
  const request = needs.request(ctx.deviceType);
  if (request === undefined) throw new DeviceFaultError('ERR_DEVICE_QUEUE', noRequest(ctx.deviceType, needs.kind));
  return request;
}

/** The chain of `request`, optionally behind an indirect table. */
export function chainOf(request: RingRequest, indirect = false): ChainSpec {
  return { readable: [...request.readable], writable: [...request.writable], indirect };
}

/**
 * The `count` used elements the device returns, or DeviceFaultError ERR_DEVICE_TIMEOUT when it does
 * not within the check's time (a device that does not answer cannot be judged by the check).
 */
export async function expectUsed(s: RingSession, count: number): Promise<UsedElem[]> {
  const used = await s.waitUsed(count);
  if (used.length < count)
    throw new DeviceFaultError('ERR_DEVICE_TIMEOUT', `queue ${s.queue}: ${used.length} of ${count} used elements within the check's time`);
  return used;
}

/** Whether the device has set DEVICE_NEEDS_RESET. */
export async function needsReset(s: RingSession): Promise<boolean> {
  return ((await s.transport.getStatus()) & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET) !== 0;
}

/** Wait `ms`, then bring the device's writes in. */
export async function settle(s: RingSession, ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
  await s.refresh();
}

/** Where `got` first differs from `want`, for the evidence ('' when equal). */
export function firstDifference(want: Uint8Array, got: Uint8Array): string {
  if (want.length !== got.length) return `${got.length} bytes, expected ${want.length}`;
  const i = want.findIndex((b, k) => b !== got[k]);
  return i < 0 ? '' : `byte ${i} is 0x${got[i]!.toString(16)}, was 0x${want[i]!.toString(16)}`;
}

export const hex = (n: number): string => `0x${n.toString(16)}`;

/** Checks of 2.7.5.1 / 2.8.15: no byte of a device-readable buffer changes, direct and (when offered) indirect. */
export function noWriteReadableCheck(format: RingFormatName): Check {
  const needs: RingNeeds = { format, request: readingRequest, kind: 'with device-readable buffers' };
  return {
    via: viaOf(format),
    applies: (ctx) => ringApplies(ctx, needs),
    run: (ctx: CheckContext) =>
      withRing(ctx, { format, queue: requestOf(ctx, needs).queue, accept: featureSet(VIRTIO_F_INDIRECT_DESC) }, async (s) => {
        const request = requestOf(ctx, needs);
        const ids = [s.add(chainOf(request))];
        if (hasFeature(s.features, VIRTIO_F_INDIRECT_DESC)) ids.push(s.add(chainOf(readingRequest(ctx.deviceType, 1)!, true)));
        await s.kick();
        await expectUsed(s, ids.length);
        ids.forEach((id, n) => {
          const sent = n === 0 ? request : readingRequest(ctx.deviceType, 1)!;
          s.ring.buffers(id).readable.forEach((span, k) => {
            const diff = firstDifference(sent.readable[k]!, s.ring.memory.view(span.addr, span.len));
            ctx.require(
              diff === '',
              `readable buffer ${k} (${span.len} bytes at ${hex(span.addr)}) of ${n === 0 ? 'a direct' : 'an indirect'} chain changed: ${diff}`,
            );
          });
        });
      }),
  };
}

/** Sizes cutting `total` bytes into up to three pieces: 1, about half the rest, the rest. */
function cuts(total: number): number[] {
  if (total <= 1) return [total];
  const mid = Math.ceil((total - 1) / 2);
  return [1, mid, total - 1 - mid].filter((n) => n > 0);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** `request` cut into other descriptors: readable bytes and writable sizes each re-cut (writable parts merged, e.g. data with a status byte). */
function recut(request: RingRequest): ChainSpec {
  const readable = concat(request.readable);
  const pieces: Uint8Array[] = [];
  let at = 0;
  for (const n of cuts(readable.length)) {
    pieces.push(readable.slice(at, at + n));
    at += n;
  }
  const writable = request.writable.reduce((n, w) => n + w, 0);
  return { readable: readable.length > 0 ? pieces : [], writable: writable > 0 ? cuts(writable) : [] };
}

/**
 * 2.7.4.1 (split: no assumption about the arrangement of descriptors) and 2.8.18 (packed: a chain's
 * descriptors used in the order they were made available): the request cut into other descriptors
 * gets the answer it gets in its usual arrangement. With `deterministic`, only devices whose
 * written bytes are fixed (a block read), compared byte for byte.
 */
export function rearrangedCheck(format: RingFormatName, deterministic: boolean): Check {
  const needs: RingNeeds = {
    format,
    request: (type) => {
      const request = anyRequest(type);
      return deterministic && request?.writes === undefined ? undefined : request;
    },
    kind: deterministic ? 'whose written bytes are fixed' : 'of any kind',
  };
  return {
    via: viaOf(format),
    applies: (ctx) => ringApplies(ctx, needs),
    run: (ctx: CheckContext) =>
      withRing(ctx, { format, queue: requestOf(ctx, needs).queue }, async (s) => {
        const request = requestOf(ctx, needs);
        const usual = s.add(chainOf(request));
        await s.kick();
        const [first] = await expectUsed(s, 1);
        const baseline = s.ring.readWritten(usual, first!.len);
        const spec = recut(request);
        const id = s.add(spec);
        await s.kick();
        const used = await s.waitUsed(1);
        const shape = `readable pieces [${(spec.readable ?? []).map((p) => p.length).join(', ')}], writable [${(spec.writable ?? []).join(', ')}]`;
        ctx.require(
          used.length === 1,
          `no used element for the request cut into ${shape}${(await needsReset(s)) ? ' (DEVICE_NEEDS_RESET set)' : ''}`,
        );
        const { len } = used[0]!;
        ctx.require(len === first!.len, `len ${len} for the request cut into ${shape}; ${first!.len} in its usual arrangement`);
        if (request.writes !== undefined) {
          const diff = firstDifference(baseline, s.ring.readWritten(id, len));
          ctx.require(diff === '', `the bytes written for the request cut into ${shape} differ from the usual arrangement's: ${diff}`);
        }
      }),
  };
}

/** A chain a check made available: its id, and its writable buffers. */
export interface AddedChain {
  readonly id: number;
  readonly writable: readonly Span[];
}

/**
 * Section 6: with VIRTIO_F_IN_ORDER, buffers are used in the order they were made available. Read
 * as a driver that negotiated it does (2.7.9, 2.8.8: a used element may stand for a batch ending
 * with the buffer it names): each element must name a buffer at or after the oldest one not yet
 * used, the ring must have moved past the whole batch, and every buffer a batch implies was used
 * "completely": its writable bytes no longer all hold the driver's fill.
 */
export function inOrderCheck(
  format: RingFormatName,
  add: (s: RingSession, spec: ChainSpec) => AddedChain,
  /** What else the format shows of the order (the packed ring: where the used descriptors sit); a finding or ''. */
  verify: (s: RingSession, chains: readonly AddedChain[]) => string = () => '',
): Check {
  const needs: RingNeeds = { format, features: [VIRTIO_F_IN_ORDER], request: anyRequest, kind: 'of any kind' };
  const requests = 4;
  return {
    via: ['modern'],
    applies: (ctx) => ringApplies(ctx, needs),
    run: (ctx: CheckContext) =>
      withRing(ctx, { format, queue: requestOf(ctx, needs).queue, accept: featureSet(VIRTIO_F_IN_ORDER) }, async (s) => {
        const spec = chainOf(requestOf(ctx, needs));
        const chains = Array.from({ length: requests }, () => add(s, spec));
        await s.kick();
        const seen: string[] = [];
        let used = 0;
        let broken = '';
        await s.poll(() => {
          try {
            for (const b of s.ring.readUsedBatches()) {
              seen.push(b.batch > 1 ? `${b.id} (for ${b.batch})` : `${b.id}`);
              used += b.batch;
            }
          } catch (error) {
            broken = (error as Error).message;
          }
          return used >= requests || broken !== '';
        });
        const story = `made available ${chains.map((c) => c.id).join(', ')}; used ${seen.join(', ') || 'none'}`;
        ctx.require(broken === '', `${story}, then: ${broken}`);
        if (used < requests)
          throw new DeviceFaultError('ERR_DEVICE_TIMEOUT', `queue ${s.queue}: ${used} of ${requests} buffers used within the check's time`);
        for (const chain of chains) {
          const untouched =
            chain.writable.length > 0 &&
            chain.writable.every((span) => s.ring.memory.view(span.addr, span.len).every((b) => b === WRITABLE_FILL));
          ctx.require(!untouched, `${story}: buffer ${chain.id} counts as used, but none of its writable bytes was written`);
        }
        const finding = verify(s, chains);
        ctx.require(finding === '', `${story}: ${finding}`);
      }),
  };
}
