/**
 * Our driver half on v86's own virtio devices (npm v86 0.5.462) through V86DriverBus, no guest
 * running: enumeration, lspci decode and the probe of virtio-net, virtio-balloon and virtio-console;
 * then our VirtioConsoleDriver moving bytes both ways, each checked at the far end (v86's bus events).
 * Expected values are v86's (src/virtio.js, src/virtio_console.js) read against the spec's layouts.
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { VirtioConsoleDriver } from '../../../src/driver/console/console-driver.js';
import { bdf, type InterruptEvent } from '../../../src/bus/pci-bus.js';
import { sizeBars } from '../../../src/bus/bars.js';
import { readConfigSpace } from '../../../src/bus/config-space-reader.js';
import { enumerate } from '../../../src/bus/enumerate.js';
import { formatLspci } from '../../../src/driver/lspci.js';
import { V86DriverBus } from '../../../src/platform/v86/v86-driver-bus.js';
import { VIRTIO_ID_BALLOON, VIRTIO_ID_CONSOLE, VIRTIO_ID_NET } from '../../../src/spec/ids.js';
import { PCI_BASE_ADDRESS_0 } from '../../../src/spec/pci.js';
import { probe } from '../../../src/transport/pci/probe.js';

/** Where v86 puts its virtio devices: slot 10 net, 11 balloon, 12 console (their pci_id). */
const NET = bdf(0, 10, 0);
const BALLOON = bdf(0, 11, 0);
const CONSOLE = bdf(0, 12, 0);

let bus: V86DriverBus;

before(async () => {
  bus = await V86DriverBus.create({ virtioNet: true, virtioBalloon: true });
});

after(async () => {
  await bus?.close();
});

/** Bytes v86's console handed to its host side for port 0, in order. */
function collectOutput(): { bytes: () => Uint8Array; stop: () => void } {
  const parts: Uint8Array[] = [];
  const listener = (data: Uint8Array): void => void parts.push(data.slice());
  bus.emulator.add_listener('virtio-console0-output-bytes', listener);
  return {
    bytes: () => new Uint8Array(Buffer.concat(parts)),
    stop: () => bus.emulator.remove_listener('virtio-console0-output-bytes', listener),
  };
}

/**
 * v86's message bus (src/bus.js BusConnector, `emulator.bus`; not in v86.d.ts): the host side of its
 * console sends input as "virtio-console<port>-input-bytes".
 */
function v86Bus(): { send(name: string, data: Uint8Array): void } {
  return (bus.emulator as unknown as { bus: { send(name: string, data: Uint8Array): void } }).bus;
}

function pattern(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 7 + seed) & 0xff);
}

test("enumeration finds v86's three virtio devices with modern device IDs (0x1040 + type)", async () => {
  const virtio = (await enumerate(bus)).filter((f) => f.vendorId === 0x1af4);
  assert.deepEqual(
    virtio.map((f) => [f.bdf, f.deviceId]),
    [
      [NET, 0x1040 + VIRTIO_ID_NET],
      [BALLOON, 0x1040 + VIRTIO_ID_BALLOON],
      [CONSOLE, 0x1040 + VIRTIO_ID_CONSOLE],
    ],
  );
  // An empty slot reads all-ones and ignores writes (v86 itself would throw on the write).
  await bus.configWrite(bdf(0, 20, 0), 0x04, 2, 0x7);
  assert.equal(await bus.configRead(bdf(0, 20, 0), 0, 4), 0xffff_ffff);
});

test("lspci decode of v86's virtio-console: four I/O BARs at fixed ports, virtio capabilities", async () => {
  const cfg = await readConfigSpace(bus, CONSOLE);
  const bars = await sizeBars(bus, CONSOLE);
  const text = formatLspci(CONSOLE, cfg, bars);
  assert.match(text, /^00:0c\.0 .*\[1af4:1043\] \(rev 01\)$/m);
  assert.match(text, /Subsystem: Device \[1af4:0003\]/);
  // BAR sizes are v86's struct sizes rounded up to a power of two (>= 16): common 56 -> 64.
  for (const line of [
    'Region 0: I/O ports at b800 [size=64]',
    'Region 1: I/O ports at b900 [size=16]',
    'Region 2: I/O ports at b700 [size=16]',
    'Region 3: I/O ports at b600 [size=16]',
  ])
    assert.ok(text.includes(line), `${line}\n${text}`);
  assert.match(text, /VirtIO: notify-cfg\n\s+BAR=1 offset=00000000 size=00000010 multiplier=00000002/);
  // Sizing moved v86's ports away and back: BAR0 holds its base again and the device still answers.
  assert.equal(await bus.configRead(CONSOLE, PCI_BASE_ADDRESS_0, 4), 0xb801);
  assert.equal(await bus.ioRead(0xb800 + 0x12, 2), 10, 'num_queues (common cfg 0x12): 4 ports x 2 + 2 control queues');
});

test("the probe chooses the modern transport, through I/O BARs, for each of v86's devices", async () => {
  for (const [fn, type, base] of [
    [NET, VIRTIO_ID_NET, 0xc800],
    [BALLOON, VIRTIO_ID_BALLOON, 0xd800],
    [CONSOLE, VIRTIO_ID_CONSOLE, 0xb800],
  ] as const) {
    const result = await probe(bus, fn);
    assert.equal(result.kind, 'modern');
    if (result.kind !== 'modern') continue;
    assert.equal(result.deviceType, type);
    const { common, notify, isr, device } = result.layout;
    assert.deepEqual(
      [common, notify, isr, device].map((s) => [s?.space, s?.address]),
      [
        ['io', base],
        ['io', base + 0x100],
        ['io', base - 0x100],
        ['io', base - 0x200],
      ],
    );
    assert.equal(notify.notifyOffMultiplier, 2);
  }
});

test("our console driver writes to v86's virtio-console: the bytes arrive at v86's output, in order", async () => {
  const drv = await VirtioConsoleDriver.open(bus, CONSOLE, { multiport: false, txChunkSize: 1000, timeoutMs: 5000 });
  const out = collectOutput();
  const events: boolean[] = [];
  const unlisten = bus.onInterrupt(CONSOLE, (e: InterruptEvent) => void (e.kind === 'intx' && events.push(e.asserted)));
  try {
    assert.deepEqual(await drv.size(), { cols: 80, rows: 25 }, "v86's default console size, from the config fields");
    const sent = pattern(10_000, 3); // 10 chains of at most 1000 bytes
    await drv.port(0)!.write(sent);
    assert.deepEqual(out.bytes(), sent);
    // v86 raised its line for the used buffers; our driver's ISR read lowered it again.
    assert.equal(events[0], true);
    assert.ok(events.includes(false), `INTx events: ${events.join(',')}`);
  } finally {
    unlisten();
    out.stop();
    await drv.close();
  }
});

test("bytes v86's virtio-console sends arrive in our driver's port 0", async () => {
  const drv = await VirtioConsoleDriver.open(bus, CONSOLE, { multiport: false, timeoutMs: 5000 });
  try {
    const port = drv.port(0)!;
    const messages = [pattern(100, 1), pattern(4096, 2), pattern(1, 9)];
    // v86 puts each message in one receive buffer, or drops it when none is posted.
    for (const m of messages) v86Bus().send('virtio-console0-input-bytes', m);
    let received = new Uint8Array(0);
    const total = messages.reduce((n, m) => n + m.byteLength, 0);
    while (received.byteLength < total) received = new Uint8Array(Buffer.concat([received, await port.read(Infinity, 2000)]));
    assert.deepEqual(received, new Uint8Array(Buffer.concat(messages)));
  } finally {
    await drv.close();
  }
});

test('multiport on v86: ports are named and opened, though v86 returns some control buffers twice', async () => {
  const drv = await VirtioConsoleDriver.open(bus, CONSOLE, { timeoutMs: 5000 });
  const out = collectOutput();
  try {
    assert.equal(drv.multiport, true);
    assert.equal(drv.maxPorts, 4);
    const port = await drv.waitPort(3, 2000);
    const deadline = Date.now() + 2000;
    while ((port.name === undefined || !port.hostConnected) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual([port.name, port.isConsole, port.hostConnected], ['virtio-3', true, true]);
    // v86 (src/virtio_console.js) acks PORT_READY and PORT_OPEN before its switch and again inside it:
    // two used entries for one chain. The driver refuses the bad used index on the control transmitq
    // (counted in badControl) instead of taking a buffer it never gave.
    assert.ok(drv.badControl > 0, 'the doubled used entries were noticed');
    assert.equal(drv.core.fault, undefined, 'the data queues are unaffected');
    const sent = pattern(300, 5);
    await drv.port(0)!.write(sent);
    assert.deepEqual(out.bytes(), sent);
  } finally {
    out.stop();
    await drv.close();
  }
});

test('close() unhooks the interrupt lines from v86 (its prototype methods are back)', async () => {
  const other = await V86DriverBus.create({ virtioConsole: false });
  const pci = (other.emulator as unknown as { v86: { cpu: { devices: { pci: object } } } }).v86.cpu.devices.pci;
  assert.ok(Object.hasOwn(pci, 'raise_irq'));
  assert.deepEqual(
    (await enumerate(other)).filter((f) => f.vendorId === 0x1af4),
    [],
    'no virtio device asked for, none there',
  );
  await other.close();
  assert.ok(!Object.hasOwn(pci, 'raise_irq') && !Object.hasOwn(pci, 'lower_irq'));
  await assert.rejects(other.ioRead(0xb800, 1), /closed/);
});
