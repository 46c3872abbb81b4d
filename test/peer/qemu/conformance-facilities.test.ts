/**
 * The basic facilities' and initialisation's conformance checks (families status, features,
 * notifications, device-config, reset, initialization) against QEMU's own devices over qtest: rng,
 * blk, net and console, modern-only and transitional (both interfaces), with MSI-X. Every check
 * passes or is not applicable, except the deviations listed below, each where the spec's text shows
 * QEMU breaking the statement.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConformanceViolation } from '../../../src/errors.js';
import type { Statement } from '../../../src/conformance/statement.js';
import { statusStatements } from '../../../src/conformance/statements/status.js';
import { featuresStatements } from '../../../src/conformance/statements/features.js';
import { notificationsStatements } from '../../../src/conformance/statements/notifications.js';
import { deviceConfigStatements } from '../../../src/conformance/statements/device-config.js';
import { resetStatements } from '../../../src/conformance/statements/reset.js';
import { initializationStatements } from '../../../src/conformance/statements/initialization.js';
import { runCheck, type Outcome } from '../../helpers/run-check.js';
import { launchQemu, rawImage, slotBdf, tempDir } from './qemu-fixture.js';

const CHECKS: readonly Statement[] = [
  ...statusStatements,
  ...featuresStatements,
  ...notificationsStatements,
  ...deviceConfigStatements,
  ...resetStatements,
  ...initializationStatements,
].filter((s) => s.check !== undefined);

const TIMEOUT_MS = 2000;

/** QEMU's devices, by slot. */
const DEVICES: readonly (readonly [number, string])[] = [
  [4, 'virtio-rng-pci,disable-legacy=on'],
  [5, 'virtio-rng-pci,disable-legacy=off'],
  [6, 'virtio-blk-pci,drive=d6,disable-legacy=off'],
  [7, 'virtio-net-pci,disable-legacy=off'],
  [8, 'virtio-serial-pci,disable-legacy=off'],
  [9, 'virtio-blk-pci,drive=d9,disable-legacy=on'],
];

/**
 * Where QEMU breaks a statement, by device slot and statement ID, with the clause that shows it.
 * (Filled from the runs against 7.2 and 10.0.)
 */
const DEVIATIONS: ReadonlyMap<string, string> = new Map<string, string>([
  ...[6, 8, 9].flatMap((slot) =>
    ['initialization/no-consume-before-driver-ok', 'initialization/no-used-notification-before-driver-ok'].map(
      (id) =>
        [
          `${slot}:${id}:modern`,
          // 2.1.2: "The device MUST NOT consume buffers or send any used buffer notifications to the
          // driver before DRIVER_OK." QEMU's blk and serial serve a queue notified after FEATURES_OK
          // (a driver that notifies then breaks 3.1.1, which the device rule does not excuse).
          'QEMU virtio-blk and virtio-serial serve a queue before DRIVER_OK on the modern interface',
        ] as const,
    ),
  ),
  ...[5, 7].map(
    (slot) =>
      [
        `${slot}:initialization/legacy-use-before-driver-ok:legacy`,
        // 3.1.2: "The transitional device MUST support the driver using the device before the step
        // [DRIVER_OK]." QEMU's rng waits for DRIVER_OK (is_guest_ready), its net drops transmissions before it.
        'QEMU virtio-rng and virtio-net on the legacy interface do not serve a queue before DRIVER_OK',
      ] as const,
  ),
]);

function describe(o: Outcome): string {
  return `${o.via}: ${o.result === 'fail' ? String(o.error) : o.result === 'n/a' ? `n/a (${o.why})` : 'pass'}`;
}

test("QEMU devices against the facilities' and initialisation's checks", async () => {
  const dir = await tempDir();
  const drives = await Promise.all(
    [6, 9].map(async (slot) => ['-drive', `if=none,id=d${slot},file=${await rawImage(dir, `d${slot}.img`, 1 << 20)},format=raw`]),
  );
  const bus = await launchQemu(
    'q35',
    DEVICES.map(([slot, props]) => `${props},addr=0x${slot.toString(16)}`),
    { args: drives.flat() },
  );
  const unexpected: string[] = [];
  const seen: string[] = [];
  for (const [slot, props] of DEVICES) {
    for (const statement of CHECKS) {
      const outcomes = await runCheck(bus, slotBdf(slot), statement, TIMEOUT_MS);
      for (const o of outcomes) {
        const key = `${slot}:${statement.id}:${o.via}`;
        seen.push(`${props} ${statement.id} ${describe(o)}`);
        const deviation = DEVIATIONS.get(key);
        if (o.result === 'fail') {
          if (deviation === undefined || !(o.error instanceof ConformanceViolation))
            unexpected.push(`${props} ${statement.id} ${describe(o)}`);
        } else if (deviation !== undefined) unexpected.push(`${props} ${statement.id}: listed as a deviation, but ${describe(o)}`);
      }
    }
  }
  if (process.env.VIRTIO_TS_CONFORMANCE_LOG === '1') console.log(seen.join('\n'));
  assert.deepEqual(unexpected, []);
});
