import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ioapicInputOf, PIIX3_PIRQRC_VALUE } from '../../../src/platform/qtest/intx-routing.js';

test('pc: slot and pin swizzle onto PIRQA..D, routed to ISA IRQs 10, 10, 11, 11', () => {
  assert.equal(PIIX3_PIRQRC_VALUE, 0x0b0b0a0a);
  // Slot 1 INTA is PIRQA; each slot further moves one PIRQ on (PIIX3: (slot - 1 + pin - 1) mod 4).
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((slot) => ioapicInputOf('pc', slot, 1)),
    [10, 10, 11, 11, 10],
  );
  assert.deepEqual(
    [1, 2, 3, 4].map((pin) => ioapicInputOf('pc', 4, pin)),
    [11, 10, 10, 11],
  );
});

test('q35: PIRQ n is GSI 16 + n; ordinary slots use PIRQE..H by (slot + pin) mod 4, chipset slots PIRQA..D', () => {
  assert.deepEqual(
    [1, 2, 3, 4].map((slot) => ioapicInputOf('q35', slot, 1)),
    [21, 22, 23, 20],
  );
  assert.deepEqual(
    [1, 2, 3, 4].map((pin) => ioapicInputOf('q35', 31, pin)),
    [16, 17, 18, 19],
  );
  assert.deepEqual(
    [1, 2, 3, 4].map((pin) => ioapicInputOf('q35', 30, pin)),
    [20, 21, 22, 23],
  );
});

test('no INTx pin, or an impossible one, has no IOAPIC input', () => {
  for (const [slot, pin] of [
    [4, 0],
    [4, 5],
    [32, 1],
    [-1, 1],
    [4, 1.5],
  ] as const) {
    assert.equal(ioapicInputOf('pc', slot, pin), undefined);
    assert.equal(ioapicInputOf('q35', slot, pin), undefined);
  }
});
