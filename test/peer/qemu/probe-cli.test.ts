/**
 * `virtio-ts probe --qemu ...` against real QEMU devices: device types we have no driver for are
 * decoded, probed and negotiated and named; the ones we have drivers for move data, checked at the
 * backend the command set up.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const probeModule = fileURLToPath(new URL('../../../src/cli/commands/probe.js', import.meta.url));
const commanderModule = import.meta.resolve('commander');

/** Runs the probe command in a child Node (as the CLI would) and returns its exit code and output. */
function runProbe(args: string[]): Promise<{ code: number | null; out: string }> {
  const script =
    `import { Command } from ${JSON.stringify(commanderModule)};\n` +
    `import { register } from ${JSON.stringify(probeModule)};\n` +
    `const program = new Command();\nregister(program);\n` +
    `await program.parseAsync(['probe', ...JSON.parse(process.argv[1])], { from: 'user' });\n`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, out })));
}

const NO_DRIVER = [
  { device: 'virtio-balloon-pci', type: 5, name: 'memory ballooning (traditional)' },
  { device: 'virtio-scsi-pci', type: 8, name: 'SCSI host' },
  { device: 'virtio-9p-pci', type: 9, name: '9P transport' },
  { device: 'virtio-gpu-pci', type: 16, name: 'GPU device' },
  { device: 'virtio-keyboard-pci', type: 18, name: 'input device' },
];

for (const d of NO_DRIVER) {
  test(`probe --qemu ${d.device}: decoded, probed, negotiated, named`, async () => {
    const { code, out } = await runProbe(['--qemu', d.device, '--machine', 'q35']);
    assert.equal(code, 0, out);
    assert.match(out, /Vendor Specific Information: VirtIO: common-cfg/);
    assert.ok(out.includes(`device type: ${d.type} (${d.name})`), out);
    assert.match(out, /^probe: modern: common-cfg cap at 0x40 \(BAR4\+0x0\)/m);
    assert.match(out, /^negotiated features \(driver core, every offered bit it may accept\): .*VERSION_1/m);
    assert.match(out, /^interrupts: (MSI-X, |INTx \()/m, 'MSI-X where the device has it (virtio-balloon-pci has not), else INTx');
    assert.match(out, /^device status: ACKNOWLEDGE\|DRIVER\|FEATURES_OK$/m);
    assert.ok(out.includes(`no virtio-ts driver for ${d.name}: stopped after feature negotiation`), out);
  });
}

const WITH_DRIVER = [
  { device: 'virtio-rng-pci', data: /^data: read 32 bytes of entropy: [0-9a-f]{64}; the backend file's first 32 bytes: same bytes$/m },
  {
    device: 'virtio-blk-pci,disable-legacy=on',
    data: /^data: capacity 2048 sectors, .*read back through the driver: same bytes; in the image file: same bytes$/m,
  },
  {
    device: 'virtio-net-pci',
    data: /^data: MAC [0-9a-f]{12}; frame to the host socket: arrived intact; frame from the host socket: received intact$/m,
  },
  {
    device: 'virtio-serial-pci',
    data: /^data: multiport, .*line to the host socket: arrived intact; line from the host socket: received intact$/m,
  },
];

for (const d of WITH_DRIVER) {
  test(`probe --qemu ${d.device} --machine pc: moves data, checked at the backend`, async () => {
    const { code, out } = await runProbe(['--qemu', d.device, '--machine', 'pc']);
    assert.equal(code, 0, out);
    assert.match(out, d.data);
    // The device driver's own choice, and MSI-X (QEMU's devices have it; the driver's default).
    assert.match(out, /^driver negotiated: .*VERSION_1/m);
    assert.match(out, /^driver ring: split \(VIRTIO_F_RING_PACKED not offered\)$/m, "QEMU's default is packed=off");
    assert.match(out, /^driver interrupts: MSI-X/m);
  });

  test(`probe --qemu ${d.device} --ring packed --machine q35: packed=on, the packed ring negotiated, data checked at the backend`, async () => {
    const { code, out } = await runProbe(['--qemu', d.device, '--ring', 'packed', '--machine', 'q35']);
    assert.equal(code, 0, out);
    assert.match(out, /^QEMU -M q35 .*packed=on/m);
    assert.match(out, /^ring: packed \(VIRTIO_F_RING_PACKED offered, negotiated\)$/m);
    assert.match(out, /^driver negotiated: .*VERSION_1 RING_PACKED/m);
    assert.match(out, /^driver ring: packed \(VIRTIO_F_RING_PACKED offered, negotiated\)$/m);
    assert.match(out, d.data);
  });
}

test('probe --qemu virtio-blk-pci --force-legacy: a transitional device driven through its legacy interface moves data', async () => {
  const { code, out } = await runProbe(['--qemu', 'virtio-blk-pci', '--force-legacy', '--machine', 'pc']);
  assert.equal(code, 0, out);
  assert.match(out, /^probe: legacy \(forced\): /m);
  assert.match(out, /^device status: ACKNOWLEDGE\|DRIVER$/m, 'no FEATURES_OK on the legacy interface');
  assert.match(out, /^data: capacity 2048 sectors, .*in the image file: same bytes$/m);
});

test('probe --qemu with a device QEMU does not have fails with its message', async () => {
  const { code, out } = await runProbe(['--qemu', 'virtio-nonexistent-pci']);
  assert.notEqual(code, 0);
  assert.match(out, /'virtio-nonexistent-pci' is not a valid device model name/);
});
