/**
 * The ring families' checks (split-ring, packed-ring, event-suppression) against QEMU's own
 * devices over qtest: rng, blk, net and console, once transitional (split ring; the legacy checks
 * through the legacy interface) and once modern-only with `packed=on` (the packed ring, and the
 * split-ring checks, which decline it). Every check must pass or not apply; a check QEMU fails is
 * listed in QEMU_DEVIATIONS with the clause QEMU breaks.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Bdf, PciBus } from '../../../src/bus/pci-bus.js';
import { FunctionCheckContext } from '../../../src/conformance/context.js';
import type { Interface, Statement } from '../../../src/conformance/statement.js';
import { eventSuppressionStatements } from '../../../src/conformance/statements/event-suppression.js';
import { packedRingStatements } from '../../../src/conformance/statements/packed-ring.js';
import { splitRingStatements } from '../../../src/conformance/statements/split-ring.js';
import { ConformanceViolation, DeviceFaultError } from '../../../src/errors.js';
import { qemuVersion } from '../../../src/platform/qtest/qemu-process.js';
import { probe } from '../../../src/transport/pci/probe.js';
import { blkArgs, launchQemu, slotBdf, tempDir } from './qemu-fixture.js';

const VERSION = qemuVersion();
const TIMEOUT_MS = 2000;
const STATEMENTS = [...splitRingStatements, ...packedRingStatements, ...eventSuppressionStatements].filter((s) => s.check !== undefined);
const SLOT = { rng: 4, blk: 5, net: 6, serial: 7 } as const;

/**
 * Checks QEMU fails, by `<statement id> <device>`, with the clause QEMU breaks; a failure not
 * listed here fails the test, and so does a listed one that passes (QEMU was fixed: drop it).
 */
const INDIRECT_AFTER_CHAIN =
  '2.7.5.3.2 "The device MUST handle the case of zero or more normal chained descriptors followed by a single ' +
  'descriptor with flags&VIRTQ_DESC_F_INDIRECT": QEMU (7.2, 10.0) looks for VIRTQ_DESC_F_INDIRECT on the head ' +
  'descriptor only, takes a later indirect descriptor for a data buffer and sets DEVICE_NEEDS_RESET ' +
  '("Incorrect order for descriptors" after a writable one; a block request without its status byte). For net ' +
  'and console, whose requests are only read, it sends the table bytes as data, which the check cannot see.';
const PACKED_LIST_ID =
  '2.8.6 "Buffer ID is included in the last descriptor in the list" (and 2.8.12): QEMU 7.2 writes the used ' +
  "descriptor of a list of two with the ID of the list's first descriptor (the check's ring puts another ID " +
  "there), so it names a buffer that is not in flight; QEMU 10.0 takes the last one's. (The block requests " +
  'of the check happen to name a buffer in flight and go unnoticed.)';
/** The packed-ring checks that give QEMU 7.2 lists of two or more descriptors, by device (see PACKED_LIST_ID). */
const QEMU_72_LIST_ID = [
  ...['chain-in-order', 'no-change-after-used', 'no-write-readable', 'process-in-ring-order', 'use-only-available'].map(
    (check) => `packed-ring/${check} blk`,
  ),
  ...['no-change-after-used', 'no-write-readable', 'process-in-ring-order', 'use-only-available'].map(
    (check) => `packed-ring/${check} net`,
  ),
  ...['blk', 'net', 'rng', 'serial'].map((device) => `packed-ring/used-in-completion-order ${device}`),
];
const QEMU_DEVIATIONS: ReadonlyMap<string, string> = new Map([
  ['split-ring/indirect-after-chain rng', INDIRECT_AFTER_CHAIN],
  ['split-ring/indirect-after-chain blk', INDIRECT_AFTER_CHAIN],
  ...(VERSION.startsWith('7.2.') ? QEMU_72_LIST_ID.map((key) => [key, PACKED_LIST_ID] as const) : []),
]);

type Outcome = 'pass' | `n/a: ${string}` | `violation: ${string}`;

async function runCheck(bus: PciBus, fn: Bdf, statement: Statement, via: Interface, transitional: boolean): Promise<Outcome> {
  const facts = await probe(bus, fn, { forceLegacy: via === 'legacy' });
  const ctx = new FunctionCheckContext({ bus, fn, deviceType: facts.deviceType, via, transitional, timeoutMs: TIMEOUT_MS, statement });
  try {
    const reason = await statement.check!.applies?.(ctx);
    if (reason !== undefined) return `n/a: ${reason}`;
    await statement.check!.run(ctx);
    return 'pass';
  } catch (error) {
    if (error instanceof ConformanceViolation) return `violation: ${error.message} [${ctx.notes.join('; ')}]`;
    if (error instanceof DeviceFaultError) return `violation: device fault ${error.code}: ${error.message}`;
    throw error;
  } finally {
    await ctx.close();
  }
}

for (const variant of [
  { name: 'transitional, split ring', props: 'disable-legacy=off', transitional: true },
  { name: 'modern-only, packed=on', props: 'disable-legacy=on,packed=on', transitional: false },
]) {
  test(`QEMU ${VERSION} ${variant.name}: the ring checks pass or do not apply`, async (t) => {
    const dir = await tempDir();
    const image = join(dir, 'rings.img');
    const bytes = new Uint8Array(1 << 20);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 13 + 7) & 0xff;
    await writeFile(image, bytes);
    const bus = await launchQemu(
      'pc',
      [
        `virtio-rng-pci,addr=0x${SLOT.rng.toString(16)},${variant.props}`,
        `virtio-net-pci,netdev=n0,addr=0x${SLOT.net.toString(16)},${variant.props}`,
        `virtio-serial-pci,id=vs0,addr=0x${SLOT.serial.toString(16)},${variant.props}`,
        'virtconsole,bus=vs0.0,chardev=c0',
      ],
      { args: [...blkArgs(SLOT.blk, image, variant.props), '-netdev', 'user,id=n0,restrict=on', '-chardev', 'null,id=c0'] },
    );
    const failures: string[] = [];
    let passed = 0;
    for (const [device, slot] of Object.entries(SLOT)) {
      for (const statement of STATEMENTS) {
        for (const via of statement.check!.via ?? ['modern']) {
          if (via === 'legacy' && !variant.transitional) continue;
          const outcome = await runCheck(bus, slotBdf(slot), statement, via, variant.transitional);
          t.diagnostic(`${device} ${statement.id} (${via}): ${outcome}`);
          if (outcome === 'pass') passed++;
          const listed = QEMU_DEVIATIONS.has(`${statement.id} ${device}`);
          if (listed ? outcome === 'pass' : outcome.startsWith('violation'))
            failures.push(`${device} ${statement.id} (${via}): ${outcome}${listed ? ' (listed as a QEMU deviation)' : ''}`);
        }
      }
    }
    assert.deepEqual(failures, []);
    assert.ok(passed > 0, 'some check ran');
  });
}
