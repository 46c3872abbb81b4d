/**
 * The PCI transport's checks (families pci-*) against v86's own virtio devices (npm v86, pinned)
 * through V86DriverBus, no guest running: virtio-net, virtio-balloon and virtio-console, modern-only
 * with I/O BARs and INTx only. Every check must pass or not apply, except v86's deviations
 * (DEVIATIONS), each asserted as exactly that violation wherever it applies.
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { bdf } from '../../../src/bus/pci-bus.js';
import { CATALOGUE, FAMILIES as ALL_FAMILIES } from '../../../src/conformance/catalogue.js';
import { runConformance } from '../../../src/conformance/runner.js';
import type { Family } from '../../../src/conformance/statement.js';
import { functionTarget } from '../../../src/conformance/target.js';
import { V86DriverBus } from '../../../src/platform/v86/v86-driver-bus.js';
import { judgePeerResults } from '../../helpers/conformance-peer.js';

/** The PCI transport's families (4.1). */
const FAMILIES: readonly Family[] = ALL_FAMILIES.filter((f) => f.startsWith('pci-'));

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
    const run = await runConformance(functionTarget(`v86:${name}`, `v86's ${name}`, bus, fn), CATALOGUE, {
      families: FAMILIES,
      timeoutMs: TIMEOUT_MS,
    });
    const { unexpected, passed, notApplicable } = judgePeerResults(run.results, (r) => DEVIATIONS.get(r.statement));
    t.diagnostic(`${passed} passed; not applicable: ${notApplicable.join('; ')}`);
    assert.deepEqual(unexpected, []);
  });
}
