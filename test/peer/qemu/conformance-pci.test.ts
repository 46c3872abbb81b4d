/**
 * The PCI transport's checks (families pci-*) against QEMU's own devices: virtio-rng-pci,
 * virtio-blk-pci and virtio-net-pci, modern-only, transitional and legacy-only, with MSI-X and
 * without (vectors=0), and with a second notify capability in an I/O BAR (modern-pio-notify=on),
 * through every interface each device offers. Every check must pass or not apply, except QEMU's
 * deviations (DEVIATIONS), each asserted as exactly that violation wherever it applies.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Statement } from '../../../src/conformance/statement.js';
import { pciCapabilitiesStatements } from '../../../src/conformance/statements/pci-capabilities.js';
import { pciCfgAccessStatements } from '../../../src/conformance/statements/pci-cfg-access.js';
import { pciCommonCfgStatements } from '../../../src/conformance/statements/pci-common-cfg.js';
import { pciHeaderStatements } from '../../../src/conformance/statements/pci-header.js';
import { pciIsrStatements } from '../../../src/conformance/statements/pci-isr.js';
import { pciLegacyStatements } from '../../../src/conformance/statements/pci-legacy.js';
import { pciMsixStatements } from '../../../src/conformance/statements/pci-msix.js';
import { pciNotifyStatements } from '../../../src/conformance/statements/pci-notify.js';
import { functionFacts, runCheck } from '../../helpers/conformance-run.js';
import { launch, MACHINES, rawImage, slotBdf, tempDir } from './qemu-fixture.js';

const CHECKS: readonly Statement[] = [
  ...pciHeaderStatements,
  ...pciCapabilitiesStatements,
  ...pciCommonCfgStatements,
  ...pciNotifyStatements,
  ...pciIsrStatements,
  ...pciCfgAccessStatements,
  ...pciLegacyStatements,
  ...pciMsixStatements,
].filter((s) => s.check !== undefined);

const TIMEOUT_MS = 2000;
/** Fewest checks that must run to a pass on any target (a legacy-only function has the fewest that apply). */
const MIN_PASSED = 15;

interface Target {
  readonly slot: number;
  readonly name: string;
  /** The -device string without addr. */
  readonly device: string;
}

const MODES = [
  ['modern-only', 'disable-legacy=on'],
  ['transitional', 'disable-legacy=off'],
  ['legacy-only', 'disable-modern=on'],
] as const;

const TARGETS: readonly Target[] = [
  ...MODES.map(([mode, props], i): Target => ({ slot: 4 + i, name: `virtio-rng-pci ${mode}`, device: `virtio-rng-pci,${props}` })),
  ...MODES.map(([mode, props], i): Target => ({
    slot: 7 + i,
    name: `virtio-blk-pci ${mode}`,
    device: `virtio-blk-pci,drive=d0${i},${props}`,
  })),
  ...MODES.map(([mode, props], i): Target => ({ slot: 10 + i, name: `virtio-net-pci ${mode}`, device: `virtio-net-pci,${props}` })),
  { slot: 13, name: 'virtio-rng-pci modern-only, vectors=0', device: 'virtio-rng-pci,disable-legacy=on,vectors=0' },
  { slot: 14, name: 'virtio-blk-pci transitional, vectors=0', device: 'virtio-blk-pci,drive=d14,disable-legacy=off,vectors=0' },
  { slot: 15, name: 'virtio-rng-pci modern-only, modern-pio-notify=on', device: 'virtio-rng-pci,disable-legacy=on,modern-pio-notify=on' },
];

/**
 * QEMU's deviations, by statement: why it is QEMU that breaks the clause. Each must fail wherever it
 * applies, so that a QEMU that fixes it shows up here.
 */
const DEVIATIONS: ReadonlyMap<string, string> = new Map([
  [
    'pci-isr/pci-status-after-msix-disabled',
    // 4.1.4.5.1: "If MSI-X capability is disabled, the device MUST set the Interrupt Status bit in the
    // PCI Status register ... to the logical OR of all bits in ISR status". QEMU sets the ISR queue bit
    // on every notification, also with MSI-X on, but updates the INTx level (and so the status bit)
    // only when it notifies without MSI-X: after MSI-X is disabled the ISR reads 0x1 while the status
    // bit stays clear (seen on 7.2 and 10.0).
    'QEMU does not re-derive the INTx state from the ISR when MSI-X is disabled',
  ],
]);

for (const machine of MACHINES) {
  test(`-M ${machine}: QEMU devices against the PCI transport checks`, async (t) => {
    const dir = await tempDir();
    const args: string[] = [];
    for (const target of TARGETS) {
      const drive = /drive=(d\d+)/.exec(target.device)?.[1];
      if (drive !== undefined) args.push('-drive', `if=none,id=${drive},file=${await rawImage(dir, `${drive}.img`, 1 << 20)},format=raw`);
      args.push('-device', `${target.device},addr=0x${target.slot.toString(16)}`);
    }
    const bus = await launch({ machine, args });
    for (const target of TARGETS) {
      await t.test(target.name, async (tt) => {
        const fn = slotBdf(target.slot);
        const facts = await functionFacts(bus, fn);
        const failures: string[] = [];
        const passed: string[] = [];
        const notApplicable: string[] = [];
        for (const statement of CHECKS) {
          for (const o of await runCheck(statement, facts, () => ({ bus, fn }), TIMEOUT_MS)) {
            const where = `${statement.id} via ${o.via}`;
            if (o.kind === 'pass') passed.push(where);
            if (o.kind === 'n/a') notApplicable.push(`${where} (${o.reason})`);
            if (o.kind === 'error') failures.push(`${where}: ${String(o.error)}`);
            const deviation = DEVIATIONS.get(statement.id);
            if (o.kind === 'violation' && deviation === undefined) failures.push(`${where}: ${o.message}`);
            if (o.kind === 'pass' && deviation !== undefined)
              failures.push(`${where}: passes; the listed deviation (${deviation}) is gone`);
          }
        }
        tt.diagnostic(`${passed.length} passed; not applicable: ${notApplicable.join('; ')}`);
        assert.deepEqual(failures, []);
        assert.ok(passed.length >= MIN_PASSED, `only ${passed.length} checks ran to a pass`);
      });
    }
  });
}
