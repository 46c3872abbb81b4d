/**
 * The differential layout report against real QEMU: for each device type and mode, on both
 * machines, QEMU's function and our device model read by the same driver code differ in exactly
 * the documented ACCEPTED_DIFFERENCES: nothing unexplained, and no accepted entry that no longer
 * occurs (a stale excuse hides nothing but is still a lie in the README). With the packed ring
 * offered on both sides (QEMU's packed=on, our packed: true; modern and transitional only) the same
 * holds, and VIRTIO_F_RING_PACKED (bit 34) is offered by both.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ACCEPTED_DIFFERENCES } from '../../../src/cli/accepted-differences.js';
import { LAYOUT_DEVICES, LAYOUT_MODES } from '../../../src/cli/layout-devices.js';
import { layoutDiff } from '../../../src/cli/layout-diff.js';
import type { RingOption } from '../../../src/cli/ring-option.js';
import { VIRTIO_F_RING_PACKED } from '../../../src/spec/features.js';
import type { VirtioPciMode } from '../../../src/transport/pci/virtio-pci-function.js';
import { MACHINES } from './qemu-fixture.js';

for (const machine of MACHINES) {
  test(`-M ${machine}: QEMU's virtio-pci devices and our models differ only as documented`, { concurrency: 6 }, async (t) => {
    const runs: Promise<void>[] = [];
    const cases: [RingOption, VirtioPciMode][] = [
      ...LAYOUT_MODES.map((mode): [RingOption, VirtioPciMode] => ['split', mode]),
      ['packed', 'modern'],
      ['packed', 'transitional'],
    ];
    for (const device of LAYOUT_DEVICES) {
      for (const [ring, mode] of cases) {
        const run = t.test(`${device} ${mode} ${ring}`, async () => {
          const diff = await layoutDiff(device, mode, machine, ring);
          const key = (r: { section: string; field: string }): string => `${r.section} ${r.field}`;
          // The identity rows are compared like every other: a wrong device ID would be unexplained.
          assert.ok(diff.rows.some((r) => r.section === 'header' && r.field === 'vendor:device' && r.same));
          assert.ok(
            diff.rows.some((r) => r.section === 'probe' && r.same),
            'the probe decides the same on both',
          );
          const packedRow = diff.rows.find((r) => r.section === 'feature' && r.field.startsWith(`${VIRTIO_F_RING_PACKED} `));
          if (ring === 'packed') assert.deepEqual([packedRow?.qemu, packedRow?.ours], ['offered', 'offered'], 'both offer bit 34');
          else assert.equal(packedRow, undefined, 'neither side offers the packed ring unless asked');
          const unexplained = diff.rows
            .filter((r) => !r.same && r.accepted === undefined)
            .map((r) => `${key(r)}: QEMU ${r.qemu ?? '-'}, ours ${r.ours ?? '-'}`);
          assert.deepEqual(unexplained, [], 'every difference is fixed or documented');
          const stale = ACCEPTED_DIFFERENCES.filter((a) => a.devices.includes(device) && a.modes.includes(mode))
            .filter((a) => !diff.rows.some((r) => !r.same && r.section === a.section && a.field.test(r.field)))
            .map((a) => `${a.section} ${a.field.source}`);
          assert.deepEqual(stale, [], 'every documented difference still occurs');
        });
        runs.push(run);
      }
    }
    await Promise.all(runs);
  });
}
