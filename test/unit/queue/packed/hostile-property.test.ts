import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { QueueFaultError } from '../../../../src/errors.js';
import type { DescriptorChain } from '../../../../src/queue/types.js';
import { MockPackedQueue } from '../../../../src/testing.js';
import { PD, EV } from '../../../helpers/packed-spec.js';

type Op =
  | {
      readonly kind: 'poke';
      readonly slot: number;
      readonly addr: bigint;
      readonly len: number;
      readonly id: number;
      readonly flags: number;
    }
  | { readonly kind: 'table'; readonly slot: number; readonly entries: number; readonly flags: number; readonly tableLen: number }
  | { readonly kind: 'chain'; readonly n: number; readonly indirect: boolean }
  | { readonly kind: 'pass' }
  | { readonly kind: 'complete'; readonly pick: number; readonly len: number }
  | { readonly kind: 'event'; readonly flags: number; readonly desc: number };

/** Flags a hostile driver might write: every combination of the bits the ring knows, and others. */
const flagBits = fc.integer({ min: 0, max: 0xffff }).map((r) => (r & 0x8087) | (r & 0x7f78 & (r >> 3)));
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('poke' as const),
      slot: fc.nat(),
      addr: fc.oneof(fc.bigInt({ min: 0n, max: 1n << 20n }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })),
      len: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 0xffff_ffff })),
      id: fc.oneof(fc.nat({ max: 16 }), fc.nat({ max: 0xffff })),
      flags: flagBits,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('table' as const),
      slot: fc.nat(),
      entries: fc.integer({ min: 1, max: 12 }),
      flags: flagBits,
      tableLen: fc.integer({ min: 0, max: 200 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('chain' as const), n: fc.integer({ min: 1, max: 4 }), indirect: fc.boolean() }) },
  { weight: 3, arbitrary: fc.constant({ kind: 'pass' as const }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('complete' as const), pick: fc.nat(), len: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('event' as const), flags: fc.nat({ max: 3 }), desc: fc.nat({ max: 0xffff }) }) },
);

test('hostile packed rings: the device answers chains inside every limit or a QueueFaultError, and nothing else', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(1, 3, 8, 16),
      fc.boolean(),
      fc.boolean(),
      fc.array(op, { maxLength: 80 }),
      (size, eventIdx, indirect, ops) => {
        const m = new MockPackedQueue({ size, memSize: 1 << 20 });
        const q = m.deviceQueue({ eventIdx, indirect });
        const held: DescriptorChain[] = [];
        const heldIds = new Set<number>();
        const guarded = (fn: () => void): boolean => {
          try {
            fn();
            return true;
          } catch (e) {
            if (e instanceof QueueFaultError) return false;
            throw e;
          }
        };
        for (const o of ops) {
          let ok = true;
          switch (o.kind) {
            case 'poke':
              m.setDesc(o.slot % size, { addr: o.addr, len: o.len, id: o.id, flags: o.flags });
              break;
            case 'table': {
              const table = m.alloc(o.entries * PD.size, 16);
              for (let i = 0; i < o.entries; i++)
                m.writeDesc(table, i, { addr: m.alloc(8), len: 8, id: 0, flags: i === o.entries - 1 ? o.flags : PD.WRITE & o.flags });
              m.setDesc(o.slot % size, { addr: table, len: o.tableLen, id: o.slot & 0xff, flags: o.flags | PD.INDIRECT });
              break;
            }
            case 'chain':
              // A well-formed chain at the driver's position, when the driver thinks it fits.
              if (m.numFree >= (o.indirect ? 1 : o.n) && o.n <= size)
                m.addChain({ writable: new Array<number>(o.n).fill(4), indirect: o.indirect });
              break;
            case 'pass': {
              // One pass without the driver: at most `size` chains, each inside every limit.
              let popped = 0;
              ok = guarded(() => {
                for (let c = q.pop(); c; c = q.pop()) {
                  popped++;
                  assert.ok(popped <= size, 'a pass pops at most `size` chains');
                  assert.ok(c.head < size && !heldIds.has(c.head), `id ${c.head} is in range and not in flight`);
                  assert.ok(c.count >= 1 && c.count <= size && c.readable <= c.count);
                  let bytes = 0;
                  for (let i = 0; i < c.count; i++) {
                    assert.ok(m.memory.contains(c.addr(i), c.len(i)), 'every buffer lies in guest memory');
                    bytes += c.len(i);
                  }
                  assert.equal(bytes, c.readableBytes + c.writableBytes);
                  assert.ok(bytes <= 2 ** 32);
                  held.push(c);
                  heldIds.add(c.head);
                }
              });
              assert.ok(held.length <= size);
              break;
            }
            case 'complete': {
              if (held.length === 0) break;
              const c = held.splice(o.pick % held.length, 1)[0]!;
              heldIds.delete(c.head);
              q.pushUsed(c.head, o.len % (c.writableBytes + 1));
              break;
            }
            case 'event':
              m.setDriverEvent(o.flags, o.desc & 0x7fff, o.desc >>> 15);
              ok = guarded(() => void q.needsInterrupt());
              if (o.flags === EV.RESERVED && !ok) return; // the device stops here
              break;
          }
          if (!ok) return; // a fault: the device sets DEVICE_NEEDS_RESET and uses the ring no more
        }
      },
    ),
    { numRuns: 400 },
  );
});
