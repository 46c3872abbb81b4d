/**
 * The PCI transport's checks (families pci-*) against v86's own virtio devices (npm v86, pinned)
 * through V86DriverBus, no guest running: virtio-net, virtio-balloon and virtio-console, modern-only
 * with I/O BARs and INTx only. Every check must pass or not apply, except v86's deviations
 * (DEVIATIONS), each asserted as exactly that violation wherever it applies.
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { bdf } from '../../../src/bus/pci-bus.js';
import type { Statement } from '../../../src/conformance/statement.js';
import { pciCapabilitiesStatements } from '../../../src/conformance/statements/pci-capabilities.js';
import { pciCfgAccessStatements } from '../../../src/conformance/statements/pci-cfg-access.js';
import { pciCommonCfgStatements } from '../../../src/conformance/statements/pci-common-cfg.js';
import { pciHeaderStatements } from '../../../src/conformance/statements/pci-header.js';
import { pciIsrStatements } from '../../../src/conformance/statements/pci-isr.js';
import { pciLegacyStatements } from '../../../src/conformance/statements/pci-legacy.js';
import { pciMsixStatements } from '../../../src/conformance/statements/pci-msix.js';
import { pciNotifyStatements } from '../../../src/conformance/statements/pci-notify.js';
import { V86DriverBus } from '../../../src/platform/v86/v86-driver-bus.js';
import { functionFacts, runCheck } from '../../helpers/conformance-run.js';

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

const TIMEOUT_MS = 1000;

/** Where v86 puts its virtio devices (their pci_id). */
const TARGETS = [
  ['virtio-net', bdf(0, 10, 0)],
  ['virtio-balloon', bdf(0, 11, 0)],
  ['virtio-console', bdf(0, 12, 0)],
] as const;

/**
 * v86's deviations, by statement: why it is v86 that breaks the clause (read against v86's
 * src/virtio.js and src/pci.js). Each must fail wherever it applies, so a fixed v86 shows up here.
 */
const DEVIATIONS: ReadonlyMap<string, string> = new Map([
  // 4.1.2.1 (SHOULD): v86 gives its modern-only devices the device type as subsystem ID (1, 3, 5),
  // the values legacy drivers match on.
  ['pci-header/non-transitional-subsystem-id', 'subsystem device ID = device type, below 0x40'],
  // 4.1.3.2: v86 keeps no high dword of queue_desc (a 32-bit machine): it reads 0 and writes are
  // dropped, so the high half the driver wrote is not there to read back.
  ['pci-common-cfg/queue-desc-halves-independent', 'the high dword of queue_desc reads 0 whatever was written'],
  // 4.1.4.5.1: v86's PCI layer never sets the Interrupt Status bit of the status register, and
  // raises the pin without looking at the command register's Interrupt Disable (PCI rules).
  ['pci-isr/pci-status-interrupt-set', 'the PCI status Interrupt Status bit is never set'],
  ['pci-isr/pci-status-interrupt-set-masked', 'the PCI status Interrupt Status bit is never set'],
  ['pci-isr/intx-masked-by-command', 'INTx is raised although Interrupt Disable is set'],
  // 4.1.4.9.1: v86 lists a VIRTIO_PCI_CAP_PCI_CFG capability (bar 0, length 0) but its window does
  // nothing: pci_cfg_data reads 0 and writes reach no structure.
  ['pci-cfg-access/read-32', 'the PCI cfg window is inert'],
  ['pci-cfg-access/read-16', 'the PCI cfg window is inert'],
  ['pci-cfg-access/read-8', 'the PCI cfg window is inert'],
  ['pci-cfg-access/write-32', 'the PCI cfg window is inert'],
  ['pci-cfg-access/write-16', 'the PCI cfg window is inert'],
  ['pci-cfg-access/write-8', 'the PCI cfg window is inert'],
]);

let bus: V86DriverBus;

before(async () => {
  bus = await V86DriverBus.create({ virtioNet: true, virtioBalloon: true });
});

after(async () => {
  await bus?.close();
});

for (const [name, fn] of TARGETS) {
  test(`v86 ${name} against the PCI transport checks`, async (t) => {
    const facts = await functionFacts(bus, fn);
    const failures: string[] = [];
    const passed: string[] = [];
    const notApplicable: string[] = [];
    for (const statement of CHECKS) {
      for (const o of await runCheck(statement, facts, () => ({ bus, fn }), TIMEOUT_MS)) {
        const where = `${statement.id} via ${o.via}`;
        const deviation = DEVIATIONS.get(statement.id);
        if (o.kind === 'pass') passed.push(where);
        if (o.kind === 'n/a') notApplicable.push(`${where} (${o.reason})`);
        if (o.kind === 'error') failures.push(`${where}: ${String(o.error)}`);
        if (o.kind === 'violation' && deviation === undefined) failures.push(`${where}: ${o.message}`);
        if (o.kind === 'pass' && deviation !== undefined) failures.push(`${where}: passes; the listed deviation (${deviation}) is gone`);
      }
    }
    t.diagnostic(`${passed.length} passed; not applicable: ${notApplicable.join('; ')}`);
    assert.deepEqual(failures, []);
  });
}
