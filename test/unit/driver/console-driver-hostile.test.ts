/**
 * The console driver against a scripted multiport device: the test plays the device's side of the
 * rings (the device half's own split ring over the fake bus's DMA memory) and counts the DMA memory
 * the driver holds across failures, port removal and re-adding, and close.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtioConsoleDriver } from '../../../src/driver/console/console-driver.js';
import { bdf } from '../../../src/bus/pci-bus.js';
import { DeviceFaultError } from '../../../src/errors.js';
import { SplitQueue } from '../../../src/queue/split/device-ring.js';
import * as C from '../../../src/spec/console.js';
import { qemuLikeVirtio } from '../../../src/testing/config-space-builder.js';
import { FakePciBus } from '../../../src/testing/fake-pci-bus.js';
import { ScriptedBar4 } from '../../helpers/scripted-modern-bar.js';

const FN = bdf(0, 7, 0);
/** Where the device-specific configuration starts in the scripted BAR4. */
const DEVICE_CFG = 0x2000;
const QUEUE_SIZE = 8;
const MAX_PORTS = 2;

interface ControlMessage {
  readonly id: number;
  readonly event: number;
  readonly value: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let waited = 0; !cond(); waited += 2) {
    if (waited > 2000) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

/** A multiport console device that is a script: it answers the control transmitq and sends what the test says. */
class ScriptedConsole {
  readonly bus = new FakePciBus(4 << 20);
  readonly bar = new ScriptedBar4();
  /** Control messages the driver sent. */
  readonly received: ControlMessage[] = [];
  /** Leave the control transmitq unanswered. */
  silent = false;
  private readonly queues = new Map<number, SplitQueue>();
  private readonly timer = setInterval(() => this.pump(), 1);

  constructor() {
    this.bar.deviceFeatureWords = [1 << C.VIRTIO_CONSOLE_F_MULTIPORT, 1];
    this.bar.numQueues = C.consoleQueueCount(MAX_PORTS);
    for (let q = 0; q < this.bar.numQueues; q++) this.bar.queueSize.set(q, QUEUE_SIZE);
    this.bar.regs.set(DEVICE_CFG + C.VIRTIO_CONSOLE_CONFIG_MAX_NR_PORTS, MAX_PORTS);
    this.bus.add(FN, qemuLikeVirtio({ deviceId: 0x1043 }).build(), new Map([[4, this.bar]]));
  }

  /** The device's side of queue `index` (once the driver enabled it). */
  queue(index: number): SplitQueue {
    let q = this.queues.get(index);
    if (q === undefined) {
      const at = this.bar.enabledQueues.get(index)!;
      q = new SplitQueue({
        index,
        size: QUEUE_SIZE,
        memory: this.bus.dma.memory,
        desc: at.desc,
        driver: at.driver,
        device: at.device,
        eventIdx: false,
        indirect: false,
      });
      this.queues.set(index, q);
    }
    return q;
  }

  /** Put `bytes` in the next receive buffer of queue `index` and return it used. */
  fill(index: number, bytes: Uint8Array): void {
    const q = this.queue(index);
    const chain = q.pop();
    if (chain === null) throw new Error(`queue ${index}: no buffer posted`);
    chain.view(0).set(bytes);
    q.pushUsed(chain.head, bytes.byteLength);
  }

  control(id: number, event: number, value = 0): void {
    const msg = new Uint8Array(C.VIRTIO_CONSOLE_CONTROL_SIZE);
    const dv = new DataView(msg.buffer);
    dv.setUint32(C.VIRTIO_CONSOLE_CONTROL_ID, id, true);
    dv.setUint16(C.VIRTIO_CONSOLE_CONTROL_EVENT, event, true);
    dv.setUint16(C.VIRTIO_CONSOLE_CONTROL_VALUE, value, true);
    this.fill(C.VIRTIO_CONSOLE_CONTROL_RECEIVEQ, msg);
  }

  count(event: number, id: number): number {
    return this.received.filter((m) => m.event === event && m.id === id).length;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private pump(): void {
    if (this.silent || !this.bar.enabledQueues.has(C.VIRTIO_CONSOLE_CONTROL_TRANSMITQ)) return;
    const q = this.queue(C.VIRTIO_CONSOLE_CONTROL_TRANSMITQ);
    for (let chain = q.pop(); chain !== null; chain = q.pop()) {
      const dv = new DataView(chain.view(0).slice().buffer);
      this.received.push({
        id: dv.getUint32(C.VIRTIO_CONSOLE_CONTROL_ID, true),
        event: dv.getUint16(C.VIRTIO_CONSOLE_CONTROL_EVENT, true),
        value: dv.getUint16(C.VIRTIO_CONSOLE_CONTROL_VALUE, true),
      });
      q.pushUsed(chain.head, 0);
    }
  }
}

const OPTIONS = { interrupts: 'intx', pollIntervalMs: 1, timeoutMs: 2000 } as const;

test('DEVICE_REMOVE and DEVICE_ADD of a port, again and again: no DMA memory more each time, all of it back at close, the port works again', async () => {
  const dev = new ScriptedConsole();
  try {
    const before = dev.bus.dma.allocator.freeBytes;
    const drv = await VirtioConsoleDriver.open(dev.bus, FN, OPTIONS);
    dev.control(1, C.VIRTIO_CONSOLE_DEVICE_ADD);
    await drv.waitPort(1);
    await until('PORT_READY', () => dev.count(C.VIRTIO_CONSOLE_PORT_READY, 1) === 1);
    const withPort = dev.bus.dma.allocator.freeBytes;
    for (let cycle = 1; cycle <= 3; cycle++) {
      const old = drv.port(1)!;
      dev.control(1, C.VIRTIO_CONSOLE_DEVICE_REMOVE);
      await until('the removal', () => drv.port(1) === undefined);
      await assert.rejects(old.read(), (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_PORT_REMOVED');
      dev.control(1, C.VIRTIO_CONSOLE_DEVICE_ADD);
      await drv.waitPort(1);
      await until('PORT_READY again', () => dev.count(C.VIRTIO_CONSOLE_PORT_READY, 1) === cycle + 1);
      assert.equal(dev.bus.dma.allocator.freeBytes, withPort, `cycle ${cycle}: nothing more allocated`);
    }
    assert.equal(drv.badControl, 0);
    dev.fill(C.consoleRxQueueIndex(1), new TextEncoder().encode('hello'));
    assert.equal(new TextDecoder().decode(await drv.port(1)!.read()), 'hello');
    await drv.close();
    assert.equal(dev.bus.dma.allocator.freeBytes, before);
    assert.equal(dev.bus.dma.allocator.freeBlocks, 1);
  } finally {
    dev.stop();
  }
});

test('an open that fails after the control queue is running gives back every buffer', async () => {
  const dev = new ScriptedConsole();
  dev.silent = true; // DEVICE_READY is never taken
  try {
    const before = dev.bus.dma.allocator.freeBytes;
    await assert.rejects(
      VirtioConsoleDriver.open(dev.bus, FN, { ...OPTIONS, timeoutMs: 100 }),
      (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_TIMEOUT',
    );
    assert.equal(dev.bus.dma.allocator.freeBytes, before);
  } finally {
    dev.stop();
  }
});

test('a receive loop stopped by a device fault records it: reads (or, for the control receiveq, waitPort) reject at once with the typed fault', async () => {
  const dev = new ScriptedConsole();
  try {
    const drv = await VirtioConsoleDriver.open(dev.bus, FN, OPTIONS);
    dev.control(0, C.VIRTIO_CONSOLE_DEVICE_ADD);
    const port = await drv.waitPort(0);
    // used.idx 1 naming id 8, which no chain of the 8-entry receiveq has.
    const used = dev.bar.enabledQueues.get(C.consoleRxQueueIndex(0))!.device;
    dev.bus.dma.memory.write32(used + 4, QUEUE_SIZE);
    dev.bus.dma.memory.write16(used + 2, 1);
    const usedId = (e: unknown): boolean => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_USED_ID';
    await assert.rejects(port.read(), usedId);
    const start = Date.now();
    await assert.rejects(port.read(), usedId);
    assert.ok(Date.now() - start < 1000, 'not a timeout');
    // The same on the control receiveq: no port can appear any more, so waitPort says why at once.
    const ctrlUsed = dev.bar.enabledQueues.get(C.VIRTIO_CONSOLE_CONTROL_RECEIVEQ)!.device;
    const idx = dev.bus.dma.memory.read16(ctrlUsed + 2); // DEVICE_ADD was one used entry already
    dev.bus.dma.memory.write32(ctrlUsed + 4 + 8 * (idx % QUEUE_SIZE), QUEUE_SIZE);
    dev.bus.dma.memory.write16(ctrlUsed + 2, idx + 1);
    await sleep(50);
    await assert.rejects(drv.waitPort(1), usedId);
    assert.ok(Date.now() - start < 1000, 'not a timeout');
    await drv.close();
  } finally {
    dev.stop();
  }
});
