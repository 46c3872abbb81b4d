/**
 * The modern virtio-pci function, device side, checked against the spec's numbers (written here as
 * literals, not imported, so a wrong constant in src/spec cannot make a test agree with itself).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ModernHarness, HARNESS_BAR4_BASE } from '../../helpers/modern-harness.js';
import { LOOPBACK_MAGIC } from '../../helpers/loopback-device.js';
import { MockQueue } from '../../../src/testing/mock-queue.js';
import { QueueFaultError } from '../../../src/errors.js';

// Spec 2.1 status bits.
const ACK = 1;
const DRIVER = 2;
const DRIVER_OK = 4;
const FEATURES_OK = 8;
const NEEDS_RESET = 64;
const FAILED = 128;
// Spec 6 feature bits.
const F_INDIRECT_DESC = 28n;
const F_EVENT_IDX = 29n;
const F_VERSION_1 = 32n;
const F_RING_PACKED = 34n;
const bitOf = (n: bigint): bigint => 1n << n;
const V1 = bitOf(F_VERSION_1);

/** Spec 4.1.4.3 struct virtio_pci_common_cfg: every field, offset and width. */
const COMMON_FIELDS = [
  { name: 'device_feature_select', offset: 0, width: 4 },
  { name: 'device_feature', offset: 4, width: 4 },
  { name: 'driver_feature_select', offset: 8, width: 4 },
  { name: 'driver_feature', offset: 12, width: 4 },
  { name: 'config_msix_vector', offset: 16, width: 2 },
  { name: 'num_queues', offset: 18, width: 2 },
  { name: 'device_status', offset: 20, width: 1 },
  { name: 'config_generation', offset: 21, width: 1 },
  { name: 'queue_select', offset: 22, width: 2 },
  { name: 'queue_size', offset: 24, width: 2 },
  { name: 'queue_msix_vector', offset: 26, width: 2 },
  { name: 'queue_enable', offset: 28, width: 2 },
  { name: 'queue_notify_off', offset: 30, width: 2 },
  { name: 'queue_desc_lo', offset: 32, width: 4 },
  { name: 'queue_desc_hi', offset: 36, width: 4 },
  { name: 'queue_driver_lo', offset: 40, width: 4 },
  { name: 'queue_driver_hi', offset: 44, width: 4 },
  { name: 'queue_device_lo', offset: 48, width: 4 },
  { name: 'queue_device_hi', offset: 52, width: 4 },
  { name: 'queue_notify_data', offset: 56, width: 2 },
  { name: 'queue_reset', offset: 58, width: 2 },
  { name: 'admin_queue_index', offset: 60, width: 2 },
  { name: 'admin_queue_num', offset: 62, width: 2 },
] as const;
const off = (name: (typeof COMMON_FIELDS)[number]['name']): number => COMMON_FIELDS.find((f) => f.name === name)!.offset;

const NO_VECTOR = 0xffff;

test('common cfg: the fields tile the 64-byte struct with no gaps', () => {
  let next = 0;
  for (const f of COMMON_FIELDS) {
    assert.equal(f.offset, next, f.name);
    next += f.width;
  }
  assert.equal(next, 64);
});

test('common cfg: read-only identity fields at their offsets and widths', () => {
  const h = new ModernHarness({ deviceFeatures: bitOf(3n) | bitOf(70n), queueMaxSizes: [256, 16, 64] }).enableBar();
  // device_feature windows: select 0 = bits 0..31, 1 = 32..63, 2 = 64..95 (4.1.4.3).
  h.setCommon(off('device_feature_select'), 4, 0);
  assert.equal(h.common(off('device_feature'), 4), (1 << 3) | (1 << 28) | (1 << 29));
  h.setCommon(off('device_feature_select'), 4, 1);
  assert.equal(
    h.common(off('device_feature'), 4),
    (1 << 0) | (1 << 3) | (1 << 6) | (1 << 7) | (1 << 11),
    'VERSION_1 (32), IN_ORDER (35), NOTIFICATION_DATA (38), NOTIF_CONFIG_DATA (39) and SUSPEND (43) of word 1',
  );
  h.setCommon(off('device_feature_select'), 4, 2);
  assert.equal(h.common(off('device_feature'), 4), 1 << 6, 'bit 70 is bit 6 of word 2');
  h.setCommon(off('device_feature_select'), 4, 3);
  assert.equal(h.common(off('device_feature'), 4), 0);
  h.setCommon(off('device_feature_select'), 4, 0xffff_ffff);
  assert.equal(h.common(off('device_feature_select'), 4), 0xffff_ffff, 'a 32-bit register');
  assert.equal(h.common(off('device_feature'), 4), 0, 'a select beyond every feature reads 0');
  assert.equal(h.common(off('num_queues'), 2), 3);
  assert.equal(h.common(off('config_msix_vector'), 2), NO_VECTOR);
  for (let q = 0; q < 3; q++) {
    h.setCommon(off('queue_select'), 2, q);
    assert.equal(h.common(off('queue_select'), 2), q);
    assert.equal(h.common(off('queue_size'), 2), [256, 16, 64][q]);
    assert.equal(h.common(off('queue_notify_off'), 2), q);
    assert.equal(h.common(off('queue_msix_vector'), 2), NO_VECTOR);
    assert.equal(h.common(off('queue_enable'), 2), 0);
  }
  for (const name of ['queue_notify_data', 'queue_reset', 'admin_queue_index', 'admin_queue_num'] as const)
    assert.equal(h.common(off(name), 2), 0, `${name}: its feature is not offered`);
  // Read-only fields ignore writes.
  h.setCommon(off('num_queues'), 2, 7);
  h.setCommon(off('device_feature'), 4, 0xffff_ffff);
  h.setCommon(off('queue_notify_off'), 2, 9);
  h.setCommon(off('config_generation'), 1, 9);
  assert.equal(h.common(off('num_queues'), 2), 3);
  h.setCommon(off('device_feature_select'), 4, 0);
  assert.equal(h.common(off('device_feature'), 4), (1 << 3) | (1 << 28) | (1 << 29));
  assert.equal(h.common(off('queue_notify_off'), 2), 2);
  assert.equal(h.common(off('config_generation'), 1), 0);
});

test('common cfg: each field answers at its own offset only, truncated to the access width (QEMU rule)', () => {
  const h = new ModernHarness().enableBar();
  h.negotiate();
  h.setCommon(off('queue_desc_lo'), 4, 0x1234_5678);
  assert.equal(h.common(off('queue_desc_lo'), 4), 0x1234_5678);
  assert.equal(h.common(off('queue_desc_lo'), 2), 0x5678);
  assert.equal(h.common(off('queue_desc_lo'), 1), 0x78);
  assert.equal(h.common(off('queue_desc_lo') + 1, 1), 0, 'not a field start');
  assert.equal(h.common(off('queue_desc_lo') + 2, 2), 0, 'not a field start');
  // A 4-byte read of a 1-byte field does not pull in its neighbour.
  assert.equal(h.common(off('device_status'), 4), ACK | DRIVER | FEATURES_OK);
  // A read that is not naturally aligned is split into aligned pieces (QEMU's memory core).
  assert.equal(h.common(off('queue_select'), 4), 256 * 0x10000, 'read32 at 22: queue_select | queue_size << 16');
  h.setCommon(off('queue_select'), 2, 1);
  const gen = h.common(off('config_generation'), 1);
  assert.equal(h.common(off('config_generation'), 4), 0x10_00_01_00 | gen, 'read32 at 21: generation, select, 0, size (16) truncated');
  assert.equal(h.common(off('queue_size') - 1, 2), 0x10_00, 'read16 at 23: two byte pieces');
  h.setCommon(off('queue_select'), 4, 0x0020_0000);
  assert.equal(h.common(off('queue_select'), 2), 0, 'write32 at 22 sets queue_select from its low half');
  assert.equal(h.common(off('queue_size'), 2), 32, 'and queue_size from its high half');
  // Writes at non-field offsets are ignored.
  h.setCommon(off('queue_desc_lo') + 1, 1, 0xff);
  assert.equal(h.common(off('queue_desc_lo'), 4), 0x1234_5678);
  // A narrow write sets the field from the bytes written.
  h.setCommon(off('queue_desc_lo'), 2, 0xabcd);
  assert.equal(h.common(off('queue_desc_lo'), 4), 0xabcd);
  assert.equal(h.common(off('queue_size'), 2), 32);
  h.setCommon(off('config_msix_vector'), 4, 0x0001_0040);
  assert.equal(h.common(off('queue_size'), 2), 32, 'write32 at 16: config_msix_vector only, nothing reaches queue_size');
});

test('driver_feature windows: 32-bit words, select >= 4 ignored, frozen after FEATURES_OK', () => {
  const h = new ModernHarness({ deviceFeatures: bitOf(70n) }).enableBar();
  h.setStatus(ACK);
  h.setStatus(ACK | DRIVER);
  h.setCommon(off('driver_feature_select'), 4, 1);
  h.setCommon(off('driver_feature'), 4, 1);
  h.setCommon(off('driver_feature_select'), 4, 2);
  h.setCommon(off('driver_feature'), 4, 1 << 6);
  h.setCommon(off('driver_feature_select'), 4, 4);
  h.setCommon(off('driver_feature'), 4, 0xffff_ffff);
  assert.equal(h.common(off('driver_feature'), 4), 0);
  assert.equal(h.fn.core.driverFeatures, V1 | bitOf(70n));
  h.setStatus(ACK | DRIVER | FEATURES_OK);
  assert.equal(h.status, ACK | DRIVER | FEATURES_OK);
  assert.equal(h.fn.core.negotiatedFeatures, V1 | bitOf(70n));
  h.setCommon(off('driver_feature_select'), 4, 0);
  h.setCommon(off('driver_feature'), 4, 1 << 28);
  assert.equal(h.common(off('driver_feature'), 4), 0, 'features are frozen once FEATURES_OK is set');
});

test('status: the spec 3.1.1 sequence, step by step', () => {
  const h = new ModernHarness().enableBar();
  assert.equal(h.status, 0);
  h.setStatus(DRIVER);
  assert.equal(h.status, 0, 'DRIVER needs ACKNOWLEDGE');
  h.setStatus(ACK);
  assert.equal(h.status, ACK);
  h.setStatus(ACK | FEATURES_OK);
  assert.equal(h.status, ACK, 'FEATURES_OK needs DRIVER');
  h.setStatus(ACK | DRIVER);
  assert.equal(h.status, ACK | DRIVER);
  h.setStatus(ACK | DRIVER | DRIVER_OK);
  assert.equal(h.status, ACK | DRIVER, 'DRIVER_OK needs FEATURES_OK');
  h.setDriverFeatures(V1);
  h.setStatus(ACK | DRIVER | FEATURES_OK);
  assert.equal(h.status, ACK | DRIVER | FEATURES_OK);
  h.setStatus(ACK);
  assert.equal(h.status, ACK | DRIVER | FEATURES_OK, 'a driver cannot clear bits except by reset');
  h.setStatus(ACK | DRIVER | FEATURES_OK | NEEDS_RESET);
  assert.equal(h.status, ACK | DRIVER | FEATURES_OK, "DEVICE_NEEDS_RESET is the device's bit");
  h.setStatus(ACK | DRIVER | FEATURES_OK | DRIVER_OK);
  assert.equal(h.status, ACK | DRIVER | FEATURES_OK | DRIVER_OK);
  assert.equal(h.device.activations.length, 1);
  assert.equal(h.device.activations[0]!.features, V1);
  h.setStatus(ACK | DRIVER | FEATURES_OK | DRIVER_OK | FAILED);
  assert.equal(h.status & FAILED, FAILED, 'FAILED can be set at any time');
});

test('status: FAILED stops progress until reset', () => {
  const h = new ModernHarness().enableBar();
  h.setStatus(ACK);
  h.setStatus(ACK | FAILED);
  h.setStatus(ACK | FAILED | DRIVER);
  assert.equal(h.status, ACK | FAILED);
  h.setStatus(0);
  assert.equal(h.status, 0);
});

test('status: FEATURES_OK refused (not set on read-back) for bad feature sets', () => {
  const cases: { name: string; features: bigint; accept?: (f: bigint) => boolean }[] = [
    { name: 'VERSION_1 omitted', features: bitOf(F_EVENT_IDX) },
    { name: 'an unoffered device bit', features: V1 | bitOf(5n) },
    { name: 'an unoffered transport bit (RING_PACKED)', features: V1 | bitOf(F_RING_PACKED) },
    { name: 'the device vetoes', features: V1 | bitOf(F_INDIRECT_DESC), accept: (f) => (f & bitOf(F_INDIRECT_DESC)) === 0n },
  ];
  for (const c of cases) {
    const h = new ModernHarness(c.accept ? { acceptFeatures: c.accept } : {}).enableBar();
    assert.equal(h.negotiate(c.features), ACK | DRIVER, c.name);
    // The driver may try again with a good set (2.2.2 leaves the device in DRIVER state).
    h.setDriverFeatures(V1);
    h.setStatus(ACK | DRIVER | FEATURES_OK);
    assert.equal(h.status, ACK | DRIVER | FEATURES_OK, `${c.name}: a good set is then accepted`);
  }
});

test('queue fields are writable only after FEATURES_OK, before DRIVER_OK, while the queue is disabled', () => {
  const h = new ModernHarness().enableBar();
  const writeAll = (v: number): void => {
    h.setCommon(off('queue_select'), 2, 0);
    h.setCommon(off('queue_size'), 2, 64);
    for (const name of [
      'queue_desc_lo',
      'queue_desc_hi',
      'queue_driver_lo',
      'queue_driver_hi',
      'queue_device_lo',
      'queue_device_hi',
    ] as const)
      h.setCommon(off(name), 4, v);
  };
  const state = (): number[] =>
    (['queue_size', 'queue_enable'] as const)
      .map((n) => h.common(off(n), 2))
      .concat(
        (['queue_desc_lo', 'queue_desc_hi', 'queue_driver_lo', 'queue_driver_hi', 'queue_device_lo', 'queue_device_hi'] as const).map((n) =>
          h.common(off(n), 4),
        ),
      );
  h.setStatus(ACK);
  h.setStatus(ACK | DRIVER);
  writeAll(0x1000);
  h.setCommon(off('queue_enable'), 2, 1);
  assert.deepEqual(state(), [256, 0, 0, 0, 0, 0, 0, 0], 'before FEATURES_OK: refused');
  h.setDriverFeatures(V1);
  h.setStatus(ACK | DRIVER | FEATURES_OK);
  writeAll(0x1000);
  assert.deepEqual(state(), [64, 0, 0x1000, 0x1000, 0x1000, 0x1000, 0x1000, 0x1000], 'after FEATURES_OK: accepted');
  for (const bad of [0, 3, 100, 512, 0x8000]) {
    h.setCommon(off('queue_size'), 2, bad);
    assert.equal(h.common(off('queue_size'), 2), 64, `size ${bad} is not a power of two <= 256`);
  }
  h.setCommon(off('queue_enable'), 2, 0);
  assert.equal(h.common(off('queue_enable'), 2), 0, 'writing 0 does not enable');
  h.setCommon(off('queue_enable'), 2, 1);
  assert.equal(h.common(off('queue_enable'), 2), 1);
  writeAll(0x2000);
  assert.deepEqual(state(), [64, 1, 0x1000, 0x1000, 0x1000, 0x1000, 0x1000, 0x1000], 'enabled: refused');
  h.setCommon(off('queue_select'), 2, 1);
  h.setStatus(ACK | DRIVER | FEATURES_OK | DRIVER_OK);
  h.setCommon(off('queue_size'), 2, 8);
  assert.equal(h.common(off('queue_size'), 2), 16, 'after DRIVER_OK: refused');
});

test('MSI-X vectors read back NO_VECTOR without MSI-X (4.1.5.1.2)', () => {
  const h = new ModernHarness().enableBar();
  h.negotiate();
  h.setCommon(off('config_msix_vector'), 2, 0);
  assert.equal(h.common(off('config_msix_vector'), 2), NO_VECTOR);
  h.setCommon(off('queue_msix_vector'), 2, 1);
  assert.equal(h.common(off('queue_msix_vector'), 2), NO_VECTOR);
});

test('queue_select beyond num_queues: queue registers read 0 (vector NO_VECTOR, notify_off the index, as QEMU) and ignore writes', () => {
  const h = new ModernHarness().enableBar();
  h.negotiate();
  const queueFields = COMMON_FIELDS.filter(
    (f) => f.offset >= off('queue_size') && f.name !== 'admin_queue_index' && f.name !== 'admin_queue_num',
  );
  for (const sel of [2, 3, 1023, 0x8000, 0xffff]) {
    h.setCommon(off('queue_select'), 2, sel);
    assert.equal(h.common(off('queue_select'), 2), sel);
    for (const f of queueFields) {
      h.setCommon(f.offset, f.width, f.name === 'queue_size' ? 4 : 1);
      const expected = f.name === 'queue_msix_vector' ? NO_VECTOR : f.name === 'queue_notify_off' ? sel : 0;
      assert.equal(h.common(f.offset, f.width as 2 | 4), expected, `${f.name} with queue_select ${sel}`);
    }
  }
  h.setCommon(off('queue_select'), 2, 0);
  assert.equal(h.common(off('queue_size'), 2), 256, 'queue 0 untouched');
  assert.equal(h.common(off('queue_enable'), 2), 0);
});

test('data path: notify at cap.offset + queue_notify_off * multiplier, used ring, ISR and INTx', () => {
  const h = new ModernHarness({ queueMaxSizes: [16, 8] }).enableBar();
  const q1 = new MockQueue({ size: 8, memory: h.memory, base: 0x1000 });
  h.negotiate(V1 | bitOf(F_EVENT_IDX));
  h.setupQueue(1, q1);
  h.setStatus(ACK | DRIVER | FEATURES_OK | DRIVER_OK);
  assert.equal(h.device.activations[0]!.queues[0], null, 'queue 0 was not enabled');
  const head = q1.addChain({ readable: [new Uint8Array([1, 2, 3, 4, 5])], writable: [3, 4] });
  q1.setUsedEvent(0);
  // Spec 4.1.4.4: notify address = cap.offset + queue_notify_off * notify_off_multiplier; the
  // notify cap says offset 0x3000, multiplier 4 (config space 0x70 + 8, + 16).
  const notifyCapOffset = h.fn.configRead(0x70 + 8, 4);
  const multiplier = h.fn.configRead(0x70 + 16, 4);
  h.setCommon(off('queue_select'), 2, 1);
  const addr = notifyCapOffset + h.common(off('queue_notify_off'), 2) * multiplier;
  assert.equal(addr, 0x3004);
  h.fn.barWrite(4, addr, 2, 1);
  assert.deepEqual(h.device.notifies, [{ index: 1, data: undefined }]);
  assert.deepEqual([...q1.readWritten(head, 5)], [1, 2, 3, 4, 5]);
  assert.deepEqual(q1.readUsed(), [{ id: head, len: 5 }]);
  assert.deepEqual(h.intx, [true]);
  assert.equal(h.fn.configRead(0x06, 2) & 0x08, 0x08, 'status INTERRUPT bit');
  // 4.1.4.5: reading the ISR returns the queue bit and clears it, deasserting INTx.
  assert.equal(h.isr(), 1);
  assert.deepEqual(h.intx, [true, false]);
  assert.equal(h.fn.configRead(0x06, 2) & 0x08, 0);
  assert.equal(h.isr(), 0);
  // An unaligned 4-byte write at 0x3002 is two 2-byte pieces: queue 0 (0x3002 / 4) and queue 1.
  h.fn.barWrite(4, 0x3002, 4, 0);
  assert.deepEqual(
    h.device.notifies.map((n) => n.index),
    [1, 1],
    'queue 0 is not enabled: its notify is dropped',
  );
  // A notify for queue 0 (not enabled) or before anything is pending changes nothing.
  h.notify(0, 2, 0);
  assert.deepEqual(h.intx, [true, false]);
});

test('INTX_DISABLE masks the pin but not the status INTERRUPT bit', () => {
  const h = new ModernHarness().enableBar();
  h.negotiate();
  h.setStatus(ACK | DRIVER | FEATURES_OK | DRIVER_OK);
  h.fn.configWrite(0x04, 2, 0x0402); // MEMORY | INTX_DISABLE
  h.setDeviceConfig(4, 4, 1); // config change -> interrupt
  assert.deepEqual(h.intx, []);
  assert.equal(h.fn.configRead(0x06, 2) & 0x08, 0x08);
  h.fn.configWrite(0x04, 2, 0x0002);
  assert.deepEqual(h.intx, [true], 'unmasking shows the pending interrupt');
  assert.equal(h.isr(), 2);
  assert.deepEqual(h.intx, [true, false]);
});

test('config_generation changes whenever device config changes; config interrupt only when live', () => {
  const h = new ModernHarness().enableBar();
  assert.equal(h.deviceConfig(0, 4), LOOPBACK_MAGIC);
  assert.equal(h.deviceConfig(0, 1), LOOPBACK_MAGIC & 0xff);
  assert.equal(h.deviceConfig(2, 2), LOOPBACK_MAGIC >>> 16);
  assert.equal(h.deviceConfig(8, 4), 0xffff_ffff, 'beyond the config: all-ones, as QEMU');
  assert.equal(h.deviceConfig(8, 1), 0xff);
  assert.equal(h.deviceConfig(6, 4), 0xffff_0000, 'unaligned: 2 bytes inside (scratch, 0) and 2 beyond');
  const gen0 = h.common(off('config_generation'), 1);
  h.setDeviceConfig(4, 4, 0xdead_beef);
  const gen1 = h.common(off('config_generation'), 1);
  assert.notEqual(gen1, gen0);
  assert.equal(h.deviceConfig(4, 4), 0xdead_beef);
  assert.deepEqual(h.intx, [], 'no interrupt before DRIVER_OK');
  h.negotiate();
  h.setStatus(ACK | DRIVER | FEATURES_OK | DRIVER_OK);
  h.setDeviceConfig(4, 2, 7);
  assert.notEqual(h.common(off('config_generation'), 1), gen1);
  assert.deepEqual(h.intx, [true]);
  assert.equal(h.isr(), 2, 'ISR bit 1: configuration change');
  // 256 changes wrap the 8-bit counter but every single change is visible.
  let prev = h.common(off('config_generation'), 1);
  for (let i = 0; i < 300; i++) {
    h.fn.core.configChanged();
    const g = h.common(off('config_generation'), 1);
    assert.notEqual(g, prev);
    prev = g;
  }
});

test('reset (status 0) returns queues, features, ISR, vectors and selects to power-on state', () => {
  const h = new ModernHarness({ queueMaxSizes: [16, 8] }).enableBar();
  const q0 = new MockQueue({ size: 8, memory: h.memory, base: 0x1000 });
  h.negotiate(V1 | bitOf(F_INDIRECT_DESC));
  h.setupQueue(0, q0);
  h.setStatus(ACK | DRIVER | FEATURES_OK | DRIVER_OK);
  h.setDeviceConfig(4, 4, 1);
  assert.deepEqual(h.intx, [true]);
  h.setCommon(off('device_feature_select'), 4, 1);
  h.setCommon(off('driver_feature_select'), 4, 1);
  const resets = h.device.resets;
  h.setStatus(0);
  assert.equal(h.status, 0);
  assert.equal(h.device.resets, resets + 1);
  assert.deepEqual(h.intx, [true, false], 'reset deasserts INTx');
  assert.equal(h.fn.notifications.peekIsr(), 0);
  assert.equal(h.fn.core.driverFeatures, 0n);
  for (const name of ['device_feature_select', 'driver_feature_select'] as const) assert.equal(h.common(off(name), 4), 0, name);
  assert.equal(h.common(off('queue_select'), 2), 0);
  assert.equal(h.common(off('queue_size'), 2), 16);
  assert.equal(h.common(off('queue_enable'), 2), 0);
  assert.equal(h.common(off('queue_desc_lo'), 4), 0);
  assert.equal(h.common(off('queue_msix_vector'), 2), NO_VECTOR);
  // The device works again after reset.
  assert.equal(h.negotiate(), ACK | DRIVER | FEATURES_OK);
});

test('reset: a config change the device makes while resetting raises no interrupt', () => {
  const h = new ModernHarness().enableBar();
  h.negotiate();
  h.setStatus(ACK | DRIVER | FEATURES_OK | DRIVER_OK);
  const gen = h.common(off('config_generation'), 1);
  h.setStatus(0);
  assert.notEqual(h.common(off('config_generation'), 1), gen, 'the loopback device clears its scratch on reset');
  assert.deepEqual(h.intx, [], 'no interrupt for a reset device');
  assert.equal(h.fn.notifications.peekIsr(), 0);
});

test('a ring outside guest memory: DRIVER_OK, then DEVICE_NEEDS_RESET and a config interrupt', () => {
  const h = new ModernHarness().enableBar();
  h.negotiate();
  h.setupQueue(0, { size: 16, descAddr: 0x1_0000_0000, availAddr: 0x2000, usedAddr: 0x3000 });
  h.setStatus(ACK | DRIVER | FEATURES_OK | DRIVER_OK);
  assert.equal(h.status, ACK | DRIVER | FEATURES_OK | DRIVER_OK | NEEDS_RESET);
  assert.equal(h.device.activations.length, 0);
  assert.deepEqual(h.intx, [true]);
  assert.equal(h.isr(), 2);
  h.setStatus(0);
  assert.equal(h.status, 0);
  assert.equal(h.fn.core.fault, undefined);
});

test('a malformed chain: DEVICE_NEEDS_RESET, config interrupt, queue stopped, nothing thrown', () => {
  const h = new ModernHarness({ queueMaxSizes: [16] }).enableBar();
  const q = new MockQueue({ size: 16, memory: h.memory, base: 0x1000 });
  h.negotiate();
  h.setupQueue(0, q);
  h.setStatus(ACK | DRIVER | FEATURES_OK | DRIVER_OK);
  q.setAvailRing(0, 16); // head index == queue size
  q.setAvailIdx(1);
  h.notify(0, 2, 0);
  assert.equal(h.status & NEEDS_RESET, NEEDS_RESET);
  assert.ok(h.fn.core.fault instanceof QueueFaultError);
  assert.equal(h.isr(), 2);
  const notifies = h.device.notifies.length;
  h.notify(0, 2, 0);
  assert.equal(h.device.notifies.length, notifies, 'a stopped device ignores notifies');
  h.setStatus(ACK | DRIVER | FEATURES_OK | DRIVER_OK | FAILED);
  assert.equal(h.status & NEEDS_RESET, NEEDS_RESET, 'only reset clears it');
  h.setStatus(0);
  assert.equal(h.status, 0);
});

test('ISR: any width reads and clears; writes do nothing', () => {
  const h = new ModernHarness().enableBar();
  h.negotiate();
  h.setStatus(ACK | DRIVER | FEATURES_OK | DRIVER_OK);
  h.fn.barWrite(4, 0x1000, 1, 0xff);
  assert.equal(h.fn.barRead(4, 0x1000, 4), 0);
  h.setDeviceConfig(4, 1, 1);
  assert.equal(h.fn.barRead(4, 0x1000, 4), 2);
  assert.equal(h.fn.barRead(4, 0x1000, 1), 0);
});

test('PCI_CFG window (4.1.4.9): accesses of each width into BAR4, with decoding off', () => {
  const h = new ModernHarness({ queueMaxSizes: [256, 16] }); // BAR not programmed, decoding off
  const cap = 0x84;
  const setWindow = (bar: number, offset: number, length: number): void => {
    h.fn.configWrite(cap + 4, 1, bar);
    h.fn.configWrite(cap + 8, 4, offset);
    h.fn.configWrite(cap + 12, 4, length);
  };
  assert.equal(h.fn.barRead(4, 0x14, 1), 0, 'BAR4 is not decoded');
  // 1 byte: device_status (common cfg + 20).
  setWindow(4, 0x14, 1);
  h.fn.configWrite(cap + 16, 1, ACK);
  assert.equal(h.fn.core.status, ACK);
  assert.equal(h.fn.configRead(cap + 16, 1), ACK);
  // 2 bytes: queue_size of queue 1 (common cfg + 22 select, + 24 size).
  setWindow(4, 0x16, 2);
  h.fn.configWrite(cap + 16, 2, 1);
  setWindow(4, 0x18, 2);
  assert.equal(h.fn.configRead(cap + 16, 2), 16);
  // 4-byte write: queue_desc_lo of queue 1 (common cfg + 32) once FEATURES_OK allows it.
  h.fn.core.writeStatus(ACK | DRIVER);
  h.fn.core.setDriverFeatureWord(1, 1);
  h.fn.core.writeStatus(ACK | DRIVER | FEATURES_OK);
  setWindow(4, 0x20, 4);
  h.fn.configWrite(cap + 16, 4, 0x1234_5000);
  assert.equal(h.fn.core.queues[1]!.ringHalf('desc', 0), 0x1234_5000);
  assert.equal(h.fn.configRead(cap + 16, 4), 0x1234_5000);
  // 4 bytes: device config magic (BAR4 + 0x2000).
  setWindow(4, 0x2000, 4);
  assert.equal(h.fn.configRead(cap + 16, 4), LOOPBACK_MAGIC);
  // A byte read of pci_cfg_data's second byte also triggers the access (any overlap).
  assert.equal(h.fn.configRead(cap + 17, 1), (LOOPBACK_MAGIC >>> 8) & 0xff);
  // Misaligned or bad lengths, and BARs the function does not have, leave the data untouched.
  setWindow(4, 0x2001, 4);
  assert.equal(h.fn.configRead(cap + 16, 4), LOOPBACK_MAGIC);
  setWindow(4, 0x2000, 3);
  assert.equal(h.fn.configRead(cap + 16, 4), LOOPBACK_MAGIC);
  setWindow(2, 0, 4);
  assert.equal(h.fn.configRead(cap + 16, 4), 0, 'BAR2 does not exist: reads 0');
  setWindow(4, 0x4000, 4);
  assert.equal(h.fn.configRead(cap + 16, 4), 0, 'outside BAR4: reads 0');
  // The window fields are read-write; cap_vndr/next/len/cfg_type are not.
  assert.equal(h.fn.configRead(cap + 8, 4), 0x4000);
  h.fn.configWrite(cap, 4, 0xffff_ffff);
  assert.equal(h.fn.configRead(cap, 4), 0x05_14_70_09);
});

test('BAR4 accesses are routed only while memory decoding is enabled', () => {
  const h = new ModernHarness();
  h.fn.barWrite(4, 0x14, 1, ACK);
  assert.equal(h.fn.core.status, 0);
  assert.deepEqual(h.fn.decodedBars(), []);
  h.enableBar();
  assert.deepEqual(
    h.fn.decodedBars().map((b) => [b.index, b.base, b.size, b.is64, b.prefetchable]),
    [[4, HARNESS_BAR4_BASE, 0x4000, true, true]],
  );
  h.fn.barWrite(4, 0x14, 1, ACK);
  assert.equal(h.fn.core.status, ACK);
  h.fn.configWrite(0x04, 2, 0);
  assert.equal(h.fn.barRead(4, 0x14, 1), 0);
  assert.deepEqual(h.fn.decodedBars(), []);
});

test('RING_RESET (2.6.1): offered only with the device hooks; a live queue is reset and re-enabled on a new ring', () => {
  const F_RING_RESET = 40n;
  const plain = new ModernHarness().enableBar();
  plain.setCommon(off('device_feature_select'), 4, 1);
  assert.equal(plain.common(off('device_feature'), 4) & (1 << 8), 0, 'no hooks: RING_RESET not offered');

  const h = new ModernHarness({ queueReset: true, queueMaxSizes: [16, 8] }).enableBar();
  h.setCommon(off('device_feature_select'), 4, 1);
  assert.equal(h.common(off('device_feature'), 4) & (1 << 8), 1 << 8, 'bit 40 = bit 8 of word 1');
  const first = new MockQueue({ size: 16, memory: h.memory, base: 0x1000 });
  const second = new MockQueue({ size: 8, memory: h.memory, base: 0x40000 });
  h.negotiate(V1 | bitOf(F_RING_RESET));
  h.setupQueue(0, first);
  h.setStatus(ACK | DRIVER | FEATURES_OK | DRIVER_OK);
  const a = first.addChain({ readable: [new Uint8Array([1])], writable: [1] });
  h.notify(0, 2, 0);
  assert.deepEqual(first.readUsed(), [{ id: a, len: 1 }]);

  h.setCommon(off('queue_select'), 2, 0);
  h.setCommon(off('queue_reset'), 2, 1);
  assert.deepEqual(h.device.queueResets, [0]);
  assert.equal(h.common(off('queue_reset'), 2), 0, 'reset complete');
  assert.equal(h.common(off('queue_enable'), 2), 0);
  assert.equal(h.common(off('queue_size'), 2), 16, 'default size again');
  assert.equal(h.common(off('queue_desc_lo'), 4), 0);
  first.addChain({ readable: [new Uint8Array([2])], writable: [1] });
  h.notify(0, 2, 0);
  assert.deepEqual(first.readUsed(), [], 'a reset queue is not processed');

  h.setupQueue(0, second);
  assert.equal(h.common(off('queue_enable'), 2), 1);
  assert.equal(h.common(off('queue_size'), 2), 8);
  const b = second.addChain({ readable: [new Uint8Array([3, 4])], writable: [2] });
  h.notify(0, 2, 0);
  assert.deepEqual([...second.readWritten(b, 2)], [3, 4]);
  assert.deepEqual(second.readUsed(), [{ id: b, len: 2 }]);
  assert.equal(h.status, ACK | DRIVER | FEATURES_OK | DRIVER_OK, 'no fault');
  h.setStatus(0);
  assert.equal(h.common(off('queue_reset'), 2), 0);
});

test('RING_RESET not negotiated: queue_reset is ignored and a live queue keeps running', () => {
  const h = new ModernHarness({ queueReset: true, queueMaxSizes: [16] }).enableBar();
  const q = new MockQueue({ size: 16, memory: h.memory, base: 0x1000 });
  h.negotiate(V1);
  h.setupQueue(0, q);
  h.setStatus(ACK | DRIVER | FEATURES_OK | DRIVER_OK);
  h.setCommon(off('queue_reset'), 2, 1);
  assert.deepEqual(h.device.queueResets, []);
  assert.equal(h.common(off('queue_enable'), 2), 1);
  const head = q.addChain({ readable: [new Uint8Array([5])], writable: [1] });
  h.notify(0, 2, 0);
  assert.deepEqual(q.readUsed(), [{ id: head, len: 1 }]);
});
