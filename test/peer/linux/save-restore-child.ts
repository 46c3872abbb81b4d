// The restoring half of save-restore.test.ts, run in a fresh Node process: resume the machine saved in
// argv[2] over the disk file argv[3] (ring argv[4]), let the guest finish its blkwrite, then use the
// console and the network; print one JSON line of what happened and exit.
import { readFileSync } from 'node:fs';
import { GUEST, HOST, savedMachine } from '../../helpers/saved-machine.js';
import { resultOf } from '../../helpers/linux-machine.js';
import type { RingName } from '../../helpers/ring-formats.js';

const [statePath, diskPath, ring] = process.argv.slice(2) as [string, string, RingName];
const bytes = readFileSync(statePath);
const state = new ArrayBuffer(bytes.byteLength);
new Uint8Array(state).set(bytes);
const machine = await savedMachine(diskPath, ring, state);
try {
  const { guest } = machine.m;
  const done = await guest.waitLine((l) => l.includes('VT-DONE blkwrite'), 300_000, 'the blkwrite saved mid-way');
  const hvc = await guest.command('hvcwrite hvc0 restored-console-works');
  const devices = await guest.command('devices');
  const ifname = resultOf(devices.results, 'virtio', { driver: 'virtio_net' }).fields['net'] ?? '';
  const up = await guest.command(`netup ${ifname} ${GUEST}/24`);
  const ping = resultOf((await guest.command(`ping ${HOST} 3`)).results, 'ping');
  process.stdout.write(
    `${JSON.stringify({
      blkwrite: done,
      hvcRc: hvc.rc,
      console: machine.console(),
      netupRc: up.rc,
      received: Number(ping.fields['received']),
      written: machine.disk.written,
    })}\n`,
  );
} finally {
  await machine.close();
}
