/**
 * Interrupts from QEMU's devices reach our bus as events: INTx through the intercepted IOAPIC (on pc
 * through the PIIX3 PIRQ routing the bus sets up, on q35 as the ICH9 routes it), deasserted once the
 * driver reads the ISR; and MSI-X as the driver core sets it up, each vector's message aimed at a
 * guest-RAM mailbox the bus polls.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { InterruptEvent } from '../../../src/bus/pci-bus.js';
import { VirtioDriver } from '../../../src/driver/virtio-driver.js';
import { PCI_INTERRUPT_LINE } from '../../../src/spec/pci.js';
import { VIRTIO_PCI_ISR_QUEUE } from '../../../src/spec/virtio-pci.js';
import { ioapicInputOf } from '../../../src/platform/qtest/intx-routing.js';
import type { QtestPciBus } from '../../../src/platform/qtest/qtest-pci-bus.js';
import { launch, MACHINES, slotBdf, tempDir } from './qemu-fixture.js';

const INTX_SLOT = 4;
const MSIX_SLOT = 5;
const REQUEST_BYTES = 16;
const WAIT_MS = 5000;

/** Resolves with the first event `accept` takes, or rejects after WAIT_MS. */
function nextEvent(bus: QtestPciBus, slot: number, accept: (e: InterruptEvent) => boolean): Promise<InterruptEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`no matching interrupt event within ${WAIT_MS} ms`));
    }, WAIT_MS);
    const unsubscribe = bus.onInterrupt(slotBdf(slot), (e) => {
      if (!accept(e)) return;
      clearTimeout(timer);
      unsubscribe();
      resolve(e);
    });
  });
}

/** An rng driver up to DRIVER_OK with queue 0 set up, interrupts as `interrupts` asks. */
async function openRng(bus: QtestPciBus, slot: number, interrupts: 'intx' | 'msix') {
  const driver = await VirtioDriver.open(bus, slotBdf(slot), { interrupts });
  await driver.negotiate(0n);
  const queue = await driver.setupQueue<number>(0);
  await driver.driverOk();
  const buf = bus.dma.alloc(REQUEST_BYTES, 16);
  return { driver, queue, buf };
}

for (const machine of MACHINES) {
  test(`-M ${machine}: INTx and MSI-X from virtio-rng-pci arrive as bus events`, async (t) => {
    const dir = await tempDir();
    const args: string[] = [];
    for (const slot of [INTX_SLOT, MSIX_SLOT]) {
      await writeFile(join(dir, `rng-${slot}.bin`), new Uint8Array(4096).fill(slot));
      args.push(
        '-object',
        `rng-random,id=r${slot},filename=${join(dir, `rng-${slot}.bin`)}`,
        '-device',
        `virtio-rng-pci,rng=r${slot},addr=0x${slot.toString(16)},disable-legacy=on`,
      );
    }
    const bus = await launch({ machine, args });

    await t.test('INTx: asserted on completion, deasserted by the ISR read, Interrupt Line filled in', async () => {
      const { driver, queue, buf } = await openRng(bus, INTX_SLOT, 'intx');
      assert.equal(driver.interrupts?.kind, 'intx');
      try {
        const raised = nextEvent(bus, INTX_SLOT, (e) => e.kind === 'intx' && e.asserted);
        const lowered = nextEvent(bus, INTX_SLOT, (e) => e.kind === 'intx' && !e.asserted);
        queue.submit([], [{ addr: buf.addr, len: REQUEST_BYTES }], 1);
        await queue.kick();
        await raised;
        // The driver core reads the ISR on INTx; that read lowers the line.
        await lowered;
        assert.deepEqual(await queue.waitUsed(), [{ token: 1, len: REQUEST_BYTES }]);
        assert.equal(await bus.configRead(slotBdf(INTX_SLOT), PCI_INTERRUPT_LINE, 1), ioapicInputOf(machine, INTX_SLOT, 1));
      } finally {
        await driver.close();
        bus.dma.free(buf);
      }
    });

    await t.test("MSI-X through the driver core: the queue vector's message lands in the mailbox, wakes the queue, no INTx", async () => {
      const fn = slotBdf(MSIX_SLOT);
      const { driver, queue, buf } = await openRng(bus, MSIX_SLOT, 'msix');
      try {
        // The driver's plan: vector 0 for configuration changes, vector 1 for queue 0.
        assert.equal(driver.interrupts?.kind, 'msix-per-queue');
        const message = bus.msiMessage(fn, 1);
        assert.ok(message, 'the bus hands out MSI messages');
        const intx: InterruptEvent[] = [];
        const stopIntx = bus.onInterrupt(fn, (e) => void (e.kind === 'intx' && intx.push(e)));
        const msi = nextEvent(bus, MSIX_SLOT, (e) => e.kind === 'msi');
        queue.submit([], [{ addr: buf.addr, len: REQUEST_BYTES }], 2);
        await queue.kick();
        assert.deepEqual(await msi, { kind: 'msi', address: message.address, data: message.data });
        // No polling was asked for: only the MSI-X message can wake this wait in time.
        assert.deepEqual(await queue.waitUsed(), [{ token: 2, len: REQUEST_BYTES }]);
        stopIntx();
        assert.deepEqual(intx, [], 'no INTx while MSI-X is enabled');
        // Spec 4.1.4.5.1: the ISR queue bit is not used with MSI-X, but QEMU (7.2 and 10.0) still sets it (shared/QTEST.md).
        assert.equal((await driver.transport.readIsr()) & VIRTIO_PCI_ISR_QUEUE, VIRTIO_PCI_ISR_QUEUE);
      } finally {
        await driver.close();
        bus.dma.free(buf);
      }
    });
  });
}
