/**
 * Linux's virtio_console on our virtio-console function: the port becomes the tty /dev/hvc0; a line
 * the guest writes there reaches the port's host output stream, and a line written to the host input
 * stream is read by the guest. Once on split rings, once with VIRTIO_F_RING_PACKED offered, which
 * Linux 6.1 and 6.5 (each peer leg) negotiate.
 */

import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { VirtioConsoleDevice } from '../../../src/device/console/console-device.js';
import { VIRTIO_ID_CONSOLE } from '../../../src/spec/ids.js';
import { VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, VIRTIO_CONFIG_S_DRIVER_OK } from '../../../src/spec/status.js';
import { SLOT, bootTestMachine, negotiatedRing, pciName, resultOf, type TestMachine } from '../../helpers/linux-machine.js';
import { RING_FORMATS } from '../../helpers/ring-formats.js';
import { streamBytePort } from '../../../src/device/console/port-streams.js';

for (const ring of RING_FORMATS) {
  describe(`${ring} ring`, () => {
    const input = new PassThrough();
    const output = new PassThrough();
    let received = '';
    output.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    let m: TestMachine;

    before(async () => {
      m = await bootTestMachine(
        { console: new VirtioConsoleDevice({ ports: [{ console: true, host: streamBytePort({ input, output }) }] }) },
        { ring },
      );
    });

    after(async () => {
      await m?.guest.destroy();
    });

    test('virtio_console binds the function on the ring offered and makes its port /dev/hvc0', async (t) => {
      t.diagnostic(`${m.guest.restored ? 'restored' : 'booted'} in ${Math.round(m.guest.bootMs)} ms`);
      const out = await m.guest.command('load');
      assert.equal(out.rc, 0, out.results.map((r) => r.text).join('\n'));
      const dev = resultOf(out.results, 'virtio', { pci: pciName(SLOT.console) });
      t.diagnostic(`features ${dev.fields['features']}`);
      assert.equal(Number(dev.fields['type']), VIRTIO_ID_CONSOLE);
      assert.equal(dev.fields['driver'], 'virtio_console');
      const status = Number(dev.fields['status']);
      assert.equal(
        status & (VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET),
        VIRTIO_CONFIG_S_DRIVER_OK,
        `status 0x${status.toString(16)}`,
      );
      assert.equal(negotiatedRing(dev, m.fns.console), ring);
    });

    test('guest to host: a line written to /dev/hvc0 arrives on the output stream', async () => {
      const text = `hello-from-guest-${process.pid}-${ring}`;
      const out = await m.guest.command(`hvcwrite hvc0 ${text}`);
      assert.equal(out.rc, 0, out.results.map((r) => r.text).join('\n'));
      const deadline = Date.now() + 10_000;
      while (!received.includes(`${text}\n`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(received, `${text}\n`, 'exactly the line, nothing else (raw tty, no echo)');
    });

    test('host to guest: a line written to the input stream is read from /dev/hvc0', async () => {
      const text = `hello-from-host-${process.pid}-${ring}\n`;
      const out = await m.guest.command('hvcread hvc0', 30_000, (r) => {
        if (r.kind === 'hvcready') input.write(text);
      });
      assert.equal(out.rc, 0, out.results.map((r) => r.text).join('\n'));
      assert.equal(Buffer.from(resultOf(out.results, 'hvcread').fields['hex'] ?? '', 'hex').toString('latin1'), text);
      assert.equal(m.fns.console.core.fault, undefined);
    });
  });
}
