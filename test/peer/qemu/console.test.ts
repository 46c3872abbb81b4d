/**
 * Our virtio-console driver against QEMU's virtio-serial-pci with a virtconsole port in every mode
 * of DRIVER_MODES (modern-only, transitional through either interface, legacy-only; MSI-X and
 * INTx; with packed=on too), on pc and q35. The port's chardev is a unix socket this test listens on: what the driver
 * writes (through the transmit queue, and through the emergency-write register) must arrive there,
 * and what the test writes there must come out of the driver's port.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { after } from 'node:test';
import { VirtioConsoleDriver } from '../../../src/driver/console/console-driver.js';
import { DRIVER_MODES, launch, MACHINES, slotBdf, tempDir } from './qemu-fixture.js';

const MODES = DRIVER_MODES;
const WAIT_MS = 5000;

/** The host end of one chardev: a unix socket QEMU connects to, and everything it has sent. */
interface HostEnd {
  readonly path: string;
  readonly peer: Promise<Socket>;
  received: Buffer;
}

async function hostEnd(dir: string, name: string): Promise<HostEnd> {
  const path = join(dir, `${name}.sock`);
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(path, resolve));
  after(() => server.close());
  const end: HostEnd = {
    path,
    received: Buffer.alloc(0),
    peer: new Promise<Socket>((resolve) =>
      server.once('connection', (socket) => {
        after(() => socket.destroy());
        socket.on('data', (d: Buffer) => (end.received = Buffer.concat([end.received, d])));
        resolve(socket);
      }),
    ),
  };
  return end;
}

/** Waits until the host end has received `length` bytes after offset `from`; returns them. */
async function hostReceives(end: HostEnd, from: number, length: number): Promise<Buffer> {
  const deadline = Date.now() + WAIT_MS;
  while (end.received.length < from + length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  return end.received.subarray(from, from + length);
}

for (const machine of MACHINES) {
  test(`-M ${machine}: virtconsole bytes reach, and come from, a host socket`, async (t) => {
    const dir = await tempDir();
    const ends = new Map<number, HostEnd>();
    const args: string[] = [];
    for (const m of MODES) {
      const end = await hostEnd(dir, `console-${m.slot}`);
      ends.set(m.slot, end);
      args.push('-chardev', `socket,id=c${m.slot},path=${end.path}`);
      args.push('-device', `virtio-serial-pci,id=vs${m.slot},addr=0x${m.slot.toString(16)},${m.props}`);
      args.push('-device', `virtconsole,bus=vs${m.slot}.0,chardev=c${m.slot},name=vts.console.${m.slot}`);
    }
    const bus = await launch({ machine, args });
    for (const m of MODES) {
      await t.test(m.name, async (t) => {
        const end = ends.get(m.slot)!;
        const peer = await end.peer;
        const driver = await VirtioConsoleDriver.open(bus, slotBdf(m.slot), { forceLegacy: m.forceLegacy, interrupts: m.interrupts });
        try {
          assert.equal(driver.core.probe.kind, m.kind);
          assert.equal(driver.core.ringFormat.name, m.ring);
          // QEMU gives virtio-serial 2 MSI-X vectors for its 64 queues: config, and one the queues share.
          assert.equal(driver.core.interrupts?.kind, m.plan === 'intx' ? 'intx' : 'msix-shared');
          const port = await driver.waitPort(`vts.console.${m.slot}`, WAIT_MS);
          assert.equal(port.isConsole, true, 'QEMU makes a virtconsole a console port');
          await port.open();
          await t.test('bytes the driver writes arrive at the host socket', async () => {
            const text = Buffer.from(`hello from virtio-ts on ${machine}, port ${port.id}\n`.repeat(50));
            const from = end.received.length;
            await port.write(text);
            assert.deepEqual(await hostReceives(end, from, text.length), text);
          });
          await t.test('bytes the host socket sends come out of the port', async () => {
            const text = Buffer.from(`hello from the host, ${m.name}\n`.repeat(20));
            peer.write(text);
            const chunks: Uint8Array[] = [];
            let got = 0;
            while (got < text.length) {
              const chunk = await port.read(Infinity, WAIT_MS);
              chunks.push(chunk);
              got += chunk.length;
            }
            assert.deepEqual(Buffer.concat(chunks), text);
          });
          await t.test('emergency writes go to port 0 on the host socket', async () => {
            const from = end.received.length;
            await driver.emergencyWrite(Buffer.from('!E'));
            assert.deepEqual(await hostReceives(end, from, 2), Buffer.from('!E'));
          });
        } finally {
          await driver.close();
        }
      });
    }
  });
}
