/**
 * Model-based test of the device status machine and feature negotiation (spec 2.1, 2.2, 3.1.1)
 * through the modern common configuration registers, with fast-check fc.commands: any sequence of
 * status writes (any byte), driver feature writes (any select, any word), queue enables and config
 * reads. The model knows only what the spec promises, and checks it after every command:
 * - status reads back only bits the driver wrote since the last reset (DEVICE_NEEDS_RESET is the
 *   device's alone), and a bit once set stays set until reset;
 * - DRIVER_OK implies FEATURES_OK implies DRIVER implies ACKNOWLEDGE;
 * - FEATURES_OK only for a subset of the offer that includes VERSION_1, and the features read back
 *   no longer change after it;
 * - writing 0 resets: status 0, driver features 0, every queue disabled;
 * - a queue can be enabled only between FEATURES_OK and DRIVER_OK.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_VERSION_1, bit } from '../../../src/spec/features.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
} from '../../../src/spec/status.js';
import {
  VIRTIO_PCI_COMMON_GF,
  VIRTIO_PCI_COMMON_GFSELECT,
  VIRTIO_PCI_COMMON_Q_ENABLE,
  VIRTIO_PCI_COMMON_Q_SELECT,
} from '../../../src/spec/virtio-pci.js';
import { ModernHarness } from '../../helpers/modern-harness.js';

/** What the driver did since the last reset. */
interface Model {
  written: number;
  /** Status bits seen set (they must stay). */
  seen: number;
  /** Driver features as read back when FEATURES_OK was first seen. */
  frozen: bigint | undefined;
}

type Cmd = fc.Command<Model, ModernHarness>;

const DEVICE_FEATURES = bit(0) | bit(5);

function readDriverFeatures(h: ModernHarness): bigint {
  let f = 0n;
  for (let sel = 0; sel < 4; sel++) {
    h.setCommon(VIRTIO_PCI_COMMON_GFSELECT, 4, sel);
    f |= BigInt(h.common(VIRTIO_PCI_COMMON_GF, 4)) << BigInt(32 * sel);
  }
  return f;
}

/** Every promise of the file comment, against the registers. */
function checkInvariants(m: Model, h: ModernHarness): void {
  const s = h.status;
  assert.equal(
    s & ~(m.written | VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET),
    0,
    `status 0x${s.toString(16)} has bits never written (0x${m.written.toString(16)})`,
  );
  assert.equal(s & m.seen, m.seen, `status 0x${s.toString(16)} lost bits 0x${m.seen.toString(16)}`);
  assert.equal(s & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, 0, 'a driver write set DEVICE_NEEDS_RESET');
  const implies = (a: number, b: number): void =>
    assert.ok((s & a) === 0 || (s & b) !== 0, `status 0x${s.toString(16)}: 0x${a.toString(16)} without 0x${b.toString(16)}`);
  implies(VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_FEATURES_OK);
  implies(VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_CONFIG_S_DRIVER);
  implies(VIRTIO_CONFIG_S_DRIVER, VIRTIO_CONFIG_S_ACKNOWLEDGE);
  m.seen = s;
  if ((s & VIRTIO_CONFIG_S_FEATURES_OK) !== 0) {
    const f = readDriverFeatures(h);
    const offered = h.fn.core.offeredFeatures;
    assert.equal(f & ~offered, 0n, 'FEATURES_OK with features never offered');
    assert.notEqual(f & bit(VIRTIO_F_VERSION_1), 0n, 'FEATURES_OK without VERSION_1');
    if (m.frozen === undefined) m.frozen = f;
    assert.equal(f, m.frozen, 'driver features changed after FEATURES_OK');
  }
}

class WriteStatus implements Cmd {
  constructor(readonly value: number) {}
  check(): boolean {
    return true;
  }
  run(m: Model, h: ModernHarness): void {
    h.setStatus(this.value);
    if (this.value === 0) {
      Object.assign(m, { written: 0, seen: 0, frozen: undefined });
      assert.equal(h.status, 0);
      assert.equal(readDriverFeatures(h), 0n);
      assert.ok(
        h.fn.core.queues.every((q) => !q.enabled),
        'reset left a queue enabled',
      );
    } else m.written |= this.value;
    checkInvariants(m, h);
  }
  toString(): string {
    return `status=0x${this.value.toString(16)}`;
  }
}

class WriteFeatures implements Cmd {
  constructor(
    readonly select: number,
    readonly value: number,
  ) {}
  check(): boolean {
    return true;
  }
  run(m: Model, h: ModernHarness): void {
    h.setCommon(VIRTIO_PCI_COMMON_GFSELECT, 4, this.select);
    h.setCommon(VIRTIO_PCI_COMMON_GF, 4, this.value);
    checkInvariants(m, h);
  }
  toString(): string {
    return `features[${this.select}]=0x${this.value.toString(16)}`;
  }
}

class EnableQueue implements Cmd {
  constructor(readonly index: number) {}
  check(): boolean {
    return true;
  }
  run(m: Model, h: ModernHarness): void {
    const s = h.status;
    const before = h.fn.core.queues[this.index]?.enabled ?? false;
    h.setCommon(VIRTIO_PCI_COMMON_Q_SELECT, 2, this.index);
    h.setCommon(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
    const after = h.fn.core.queues[this.index]?.enabled ?? false;
    const allowed =
      (s & VIRTIO_CONFIG_S_FEATURES_OK) !== 0 && (s & VIRTIO_CONFIG_S_DRIVER_OK) === 0 && this.index < h.fn.core.queues.length;
    assert.ok(after === before || allowed, `queue ${this.index} enabled in status 0x${s.toString(16)}`);
    checkInvariants(m, h);
  }
  toString(): string {
    return `enable(${this.index})`;
  }
}

const bits = [VIRTIO_CONFIG_S_ACKNOWLEDGE, VIRTIO_CONFIG_S_DRIVER, VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_CONFIG_S_DRIVER_OK];
const commands = [
  // Mostly the next plausible status, sometimes any byte, sometimes a reset.
  fc.integer({ min: 1, max: 4 }).map((k) => new WriteStatus(bits.slice(0, k).reduce((a, b) => a | b, 0))),
  fc.integer({ min: 0, max: 255 }).map((v) => new WriteStatus(v)),
  fc.constant(new WriteStatus(0)),
  fc
    .tuple(fc.integer({ min: 0, max: 5 }), fc.oneof(fc.constantFrom(1, 0x21, 0x2000_0000), fc.nat({ max: 0xffff_ffff })))
    .map(([s, v]) => new WriteFeatures(s, v)),
  fc.constant(new WriteFeatures(1, Number(bit(VIRTIO_F_VERSION_1) >> 32n))),
  fc.integer({ min: 0, max: 3 }).map((i) => new EnableQueue(i)),
];

test('status machine and feature negotiation keep the spec promises under any register sequence', () => {
  fc.assert(
    fc.property(fc.commands(commands, { maxCommands: 40 }), (cmds) => {
      const h = new ModernHarness({ deviceFeatures: DEVICE_FEATURES, queueMaxSizes: [8, 8] }).enableBar();
      fc.modelRun(() => ({ model: { written: 0, seen: 0, frozen: undefined }, real: h }), cmds);
    }),
    { numRuns: 300 },
  );
});

test('the model is not vacuous: a plain initialisation reaches DRIVER_OK and EVENT_IDX can be negotiated', () => {
  const h = new ModernHarness({ deviceFeatures: DEVICE_FEATURES, queueMaxSizes: [8] }).enableBar();
  const status = h.negotiate(bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_F_EVENT_IDX) | bit(5));
  assert.equal(status & VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_CONFIG_S_FEATURES_OK);
  h.setStatus(status | VIRTIO_CONFIG_S_DRIVER_OK);
  assert.equal(h.status, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
  assert.equal(readDriverFeatures(h), bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_F_EVENT_IDX) | bit(5));
});
