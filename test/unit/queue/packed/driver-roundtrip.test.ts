/**
 * The packed ring's two halves against each other, built through the seam (driverRing/deviceRing with
 * VIRTIO_F_RING_PACKED): random chain shapes, completion out of order, many laps, every byte checked
 * through the queue. Both directions of event suppression carry the wakeups: the device pops only
 * when publish() says to notify (or while it is already working), and the driver reaps only when
 * the device says to interrupt, so a notification or an interrupt that should have come and did not
 * leaves chains stranded and fails the run. Over coherent DMA, over DMA that takes the asynchronous
 * path without a copy (LocalDma), and over a remote image reached only by flush and refresh.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RamDma } from '../../../../src/bus/ram-dma.js';
import type { DmaMemory, DmaSpan } from '../../../../src/memory/dma.js';
import { ArrayGuestMemory } from '../../../../src/memory/guest-memory.js';
import { deviceRing, driverRing } from '../../../../src/queue/rings.js';
import type { DescriptorChain, DeviceQueue, DriverRing, UsedBuffer } from '../../../../src/queue/types.js';
import {
  featureSet,
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_RING_PACKED,
  VIRTIO_F_VERSION_1,
} from '../../../../src/spec/features.js';
import { LocalDma } from '../../../../src/testing/fake-pci-bus.js';
import { ImageDma } from '../../../helpers/image-dma.js';

const BASE = 0x10000;
const DMA_SIZE = 0x80000;

type DmaKind = 'coherent' | 'local' | 'image';

/** Readable byte k of `token`'s chain, and writable byte k the device writes back. */
const out = (token: number, k: number): number => (token * 7 + k * 3 + 1) & 0xff;
const back = (token: number, k: number): number => (token * 11 + k * 5 + 2) & 0xff;

interface Sent {
  readonly outs: readonly (DmaSpan & { readonly bytes: Uint8Array })[];
  readonly ins: readonly (DmaSpan & { readonly bytes: Uint8Array })[];
  len?: number;
}

interface Scenario {
  readonly size: number;
  readonly dmaKind: DmaKind;
  readonly eventIdx: boolean;
  readonly indirect: boolean;
  readonly laps: number;
}

async function roundTrip(s: Scenario, choices: readonly number[]): Promise<void> {
  const memory = new ArrayGuestMemory(BASE + DMA_SIZE);
  const dma: DmaMemory =
    s.dmaKind === 'coherent'
      ? new RamDma(memory, BASE, DMA_SIZE)
      : s.dmaKind === 'local'
        ? new LocalDma(new ArrayGuestMemory(memory.view(BASE, DMA_SIZE), BASE))
        : new ImageDma(memory, BASE, DMA_SIZE);
  const features =
    featureSet(VIRTIO_F_VERSION_1, VIRTIO_F_RING_PACKED) |
    (s.eventIdx ? featureSet(VIRTIO_F_EVENT_IDX) : 0n) |
    (s.indirect ? featureSet(VIRTIO_F_INDIRECT_DESC) : 0n);
  const driver: DriverRing<number> = driverRing<number>({ index: 0, size: s.size, dma, features, layout: 'separate' });
  assert.equal(driver.coherent, s.dmaKind === 'coherent');
  await driver.flushRings();
  const device: DeviceQueue = deviceRing({ index: 0, size: s.size, memory, areas: driver.areas, features });

  let c = 0;
  const next = (): number => choices[c++ % choices.length]!;
  const sent = new Map<number, Sent>();
  const held: DescriptorChain[] = [];
  const heldToken = new Map<DescriptorChain, number>();
  const idToken = new Map<number, number>();
  let token = 0;
  let returned = 0;
  let irq = false;
  let usedDescs = 0;

  const alloc = (len: number, fill: (k: number) => number): DmaSpan & { bytes: Uint8Array } => {
    const b = dma.alloc(len, 1 << (next() % 5));
    for (let k = 0; k < len; k++) b.bytes[k] = fill(k);
    return { addr: b.addr, len, bytes: b.bytes };
  };

  const add = (): void => {
    const n = 1 + (next() % Math.min(s.size, 5));
    if (n > driver.numFree && !(s.indirect && n > 1 && driver.numFree > 0)) return;
    const t = token++;
    const nOut = next() % (n + 1);
    let k = 0;
    const outs = Array.from({ length: nOut }, () => alloc(next() % 40, () => out(t, k++)));
    const ins = Array.from({ length: n - nOut }, () => alloc(next() % 40, () => 0xcc));
    const id = driver.add(outs, ins, t);
    idToken.set(id, t);
    sent.set(t, { outs, ins });
  };

  /** The device's side of a notification: take everything, then ask again and re-check (2.8.10). */
  const service = (): void => {
    for (;;) {
      device.setNotification(false);
      for (let chain = device.pop(); chain !== null; chain = device.pop()) {
        const t = idToken.get(chain.head);
        assert.ok(t !== undefined, `device popped buffer id ${chain.head}, not in flight`);
        const expect = sent.get(t)!;
        // Every readable byte as the driver wrote it, in order across the buffers.
        assert.equal(chain.count, expect.outs.length + expect.ins.length);
        assert.equal(chain.readable, expect.outs.length);
        let k = 0;
        let bad = -1;
        for (let i = 0; i < chain.readable; i++) for (const b of chain.view(i)) if (b !== out(t, k++) && bad < 0) bad = k - 1;
        assert.equal(bad, -1, `token ${t}: readable byte ${bad} differs`);
        held.push(chain);
        heldToken.set(chain, t);
      }
      device.setNotification(true);
      if (!device.hasAvailable()) return;
    }
  };

  const publish = async (): Promise<void> => {
    const notify = driver.coherent && next() % 2 === 0 ? driver.publishSync() : await driver.publish();
    if (notify) service();
  };

  const complete = (): void => {
    if (held.length === 0) return;
    const chain = held.splice(next() % held.length, 1)[0]!;
    const t = heldToken.get(chain)!;
    heldToken.delete(chain);
    const len = chain.writableBytes === 0 ? 0 : next() % (chain.writableBytes + 1);
    let k = 0;
    for (let i = chain.readable; i < chain.count && k < len; i++) {
      const v = chain.view(i);
      for (let j = 0; j < v.length && k < len; j++) v[j] = back(t, k++);
    }
    sent.get(t)!.len = len;
    idToken.delete(chain.head);
    device.pushUsed(chain.head, len);
    usedDescs++;
    if (device.needsInterrupt()) irq = true;
  };

  const check = (used: UsedBuffer<number>[]): void => {
    for (const u of used) {
      const e = sent.get(u.token);
      assert.ok(e?.len !== undefined, `token ${u.token} reaped but never completed`);
      assert.equal(u.len, e.len);
      let k = 0;
      let bad = -1;
      for (const span of e.ins)
        for (let j = 0; j < span.len && k < u.len; j++) if (span.bytes[j] !== back(u.token, k++) && bad < 0) bad = k - 1;
      assert.equal(bad, -1, `token ${u.token}: written byte ${bad} differs`);
      for (const span of e.ins) dma.free({ addr: span.addr, bytes: span.bytes });
      for (const span of e.outs) dma.free({ addr: span.addr, bytes: span.bytes });
      sent.delete(u.token);
      returned++;
    }
  };

  /** The driver's side of an interrupt: suppress, reap, re-enable, reap again for the race. */
  const interrupt = async (): Promise<void> => {
    if (!irq) return;
    irq = false;
    await driver.setInterruptSuppression(true);
    check(driver.coherent && next() % 2 === 0 ? driver.reapSync() : await driver.reap());
    await driver.setInterruptSuppression(false);
    check(await driver.reap());
  };

  for (let steps = 0; usedDescs < s.laps * s.size; steps++) {
    assert.ok(steps < 200 * s.laps * s.size + 2000, `stalled after ${usedDescs} used`);
    const action = next() % 6;
    if (action < 2) add();
    else if (action === 2) await publish();
    else if (action < 5) complete();
    else await interrupt();
  }
  // Drain: with nothing new added, the wakeups alone must bring every chain back.
  await publish();
  for (let steps = 0; sent.size > 0; steps++) {
    assert.ok(steps <= 4 * s.size + 4, `stranded: ${sent.size} chains in flight, ${held.length} held by the device, irq ${irq}`);
    if (held.length > 0) complete();
    else if (irq) await interrupt();
    else break;
  }
  assert.equal(sent.size, 0, `stranded: ${sent.size} chains never came back (a lost notification or interrupt)`);
  assert.equal(returned, token);
  assert.equal(driver.numFree, s.size);
  assert.equal(device.hasAvailable(), false);
}

for (const dmaKind of ['coherent', 'local', 'image'] as const) {
  test(`driver <-> device over ${dmaKind} DMA: random chains, out-of-order completion, many laps, every byte, no lost wakeup`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(1, 2, 3, 7, 64, 100, 256),
        fc.boolean(),
        fc.boolean(),
        fc.array(fc.nat(1 << 16), { minLength: 64, maxLength: 256 }),
        async (size, eventIdx, indirect, choices) => {
          await roundTrip({ size, dmaKind, eventIdx, indirect, laps: size > 64 ? 3 : 6 }, choices);
        },
      ),
      { numRuns: 12, seed: dmaKind.length },
    );
  });
}
