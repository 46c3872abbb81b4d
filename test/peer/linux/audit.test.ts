/**
 * Linux's drivers audited by our devices (issue 14, driver audit): the guest machine with every
 * virtio function in audit mode, the modules loaded (once through the modern interface on split
 * rings, once on packed rings, once with force_legacy so the transitional functions go legacy),
 * every device exercised (blk written, flushed and read, rng read, console written, net brought up
 * and pinged), and the statements Linux broke compared with the list below, each explained. A
 * finding not listed, or a listed one no longer seen, fails the test: the list is Linux's audit as
 * the README shows it.
 */

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { defaultGuestKernel, type GuestKernel } from '../../../src/platform/v86/assets.js';
import { SLOT, bootTestMachine, pciName, resultOf, type TestMachine, type VirtioName } from '../../helpers/linux-machine.js';
import type { RingName } from '../../helpers/ring-formats.js';

/** One way the guest drives the functions. */
interface AuditCase {
  readonly name: string;
  readonly ring: RingName;
  readonly load: string;
}

const CASES: readonly AuditCase[] = [
  { name: 'modern interface, split rings', ring: 'split', load: 'load' },
  { name: 'modern interface, packed rings', ring: 'packed', load: 'load' },
  { name: 'force_legacy (transitional functions on the legacy interface)', ring: 'split', load: 'load force_legacy=1' },
];

/** "<function> <statement ID>" -> why Linux does it (and why it is harmless, or not). */
type Expected = Readonly<Record<string, string>>;

/** Linux 6.1's audit, per case (filled from the runs; each entry explained). */
const LINUX_AUDIT: Readonly<Partial<Record<GuestKernel, Readonly<Record<string, Expected>>>>> = {
  '6.1': {},
  '6.5': {},
};

const HOST = '10.0.2.2';
const GUEST = '10.0.2.15';

/** Everything the guest does with the devices once the modules are in. */
async function exercise(m: TestMachine, loaded: Awaited<ReturnType<TestMachine['guest']['command']>>): Promise<void> {
  const g = m.guest;
  for (const slot of [SLOT.blk, SLOT.blkTransitional]) {
    const disk = resultOf(loaded.results, 'virtio', { pci: pciName(slot) }).fields['block']!;
    const written = await g.command(`blkwrite ${disk} 8192 16384 audit`);
    assert.equal(written.rc, 0, written.results.map((r) => r.text).join('\n'));
    assert.equal((await g.command(`blkread ${disk} 8192 16384`)).rc, 0);
  }
  for (const name of ['virtio_rng.0', 'virtio_rng.1']) assert.equal((await g.command(`rng 32 ${name}`)).rc, 0);
  assert.equal((await g.command('hvcwrite hvc0 audit')).rc, 0);
  const ifname = resultOf(loaded.results, 'virtio', { pci: pciName(SLOT.net) }).fields['net']!;
  assert.equal((await g.command(`netup ${ifname} ${GUEST}/24`)).rc, 0);
  const ping = resultOf((await g.command(`ping ${HOST} 2 56`)).results, 'ping');
  assert.equal(ping.fields['received'], '2');
}

const kernel = defaultGuestKernel();
const machines: TestMachine[] = [];
after(async () => {
  for (const m of machines) await m.guest.destroy();
});

describe(`Linux ${kernel}'s drivers, audited by our devices`, () => {
  for (const c of CASES)
    test(c.name, async (t) => {
      const m = await bootTestMachine({}, { ring: c.ring, audit: true });
      machines.push(m);
      const loaded = await m.guest.command(c.load);
      assert.equal(loaded.rc, 0, loaded.results.map((r) => r.text).join('\n'));
      await exercise(m, loaded);
      const seen: Record<string, string> = {};
      for (const [name, audit] of Object.entries(m.audits) as [VirtioName, NonNullable<TestMachine['audits'][VirtioName]>][])
        for (const f of audit.findings) {
          seen[`${name} ${f.requirement.id}`] = `x${f.count}: ${f.detail} [${f.access}]`;
          t.diagnostic(`${name} ${f.requirement.id} x${f.count}: ${f.detail} [${f.access}]`);
        }
      const expected = LINUX_AUDIT[kernel]?.[c.name] ?? {};
      assert.deepEqual(Object.keys(seen).sort(), Object.keys(expected).sort(), JSON.stringify(seen, null, 1));
    });
});
