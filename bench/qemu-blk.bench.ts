/**
 * QEMU's virtio-blk-pci through our driver over qtest: 4 KiB and 64 KiB reads with 1, 8 and 32
 * requests per notify, beside the cost of the qtest socket itself (one command awaited at a time
 * versus pipelined, and bulk b64read) measured on the same QEMU in the same run. The socket is the
 * bottleneck: a request costs a fixed number of round trips, so batching requests per notify is
 * what moves the figures. Both interrupt paths are measured: MSI-X (the driver's default) and INTx.
 */

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlkDriver } from '../src/driver/blk/blk-driver.js';
import { bdf } from '../src/bus/pci-bus.js';
import { makeTempDir } from '../src/platform/cleanup.js';
import { findQemu } from '../src/platform/qtest/qemu-process.js';
import { QtestPciBus } from '../src/platform/qtest/qtest-pci-bus.js';
import { b64readCommand, readCommand } from '../src/platform/qtest/qtest-protocol.js';

const RUN_MS = 1000;
const IMAGE_BYTES = 16 << 20;

/** Runs `step` (which does `units` operations) until RUN_MS has passed; returns µs per operation. */
async function timePer(units: number, step: () => Promise<void>): Promise<number> {
  await step(); // warm-up
  let done = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < RUN_MS * 1e6) {
    await step();
    done += units;
    elapsed = Number(process.hrtime.bigint() - start);
  }
  return elapsed / 1e3 / done;
}

function row(cells: Array<string | number>): string {
  return cells.map((c, i) => (i === 0 ? String(c).padEnd(34) : String(c).padStart(16))).join('');
}

async function socketFigures(bus: QtestPciBus): Promise<void> {
  const client = bus.qemu.client;
  const addr = bus.dma.base;
  console.log(row(['qtest command', 'µs / command', 'MB/s']));
  const serial = await timePer(100, async () => {
    for (let i = 0; i < 100; i++) await client.request(readCommand(4, addr));
  });
  console.log(row(['readl, awaited one by one', serial.toFixed(1), '']));
  const pipelined = await timePer(1000, async () => {
    const replies: Promise<string>[] = [];
    for (let i = 0; i < 1000; i++) replies.push(client.request(readCommand(4, addr)));
    await Promise.all(replies);
  });
  console.log(row(['readl, 1000 pipelined', pipelined.toFixed(1), '']));
  for (const size of [4096, 65536]) {
    const us = await timePer(1, async () => {
      await client.request(b64readCommand(addr, size));
    });
    console.log(row([`b64read ${size / 1024} KiB`, us.toFixed(1), (size / us).toFixed(0)]));
  }
}

/**
 * Reads of `size` bytes, `perNotify` per batch (one submission round, one notify), spread over the
 * disk, with completions signalled by `interrupts` (MSI-X: a mailbox in guest RAM the bus polls;
 * INTx: QEMU's IRQ lines on the socket, then an ISR read).
 */
async function blkFigures(bus: QtestPciBus, interrupts: 'msix' | 'intx'): Promise<void> {
  const blk = await BlkDriver.open(bus, bdf(0, 4, 0), { interrupts });
  try {
    console.log(row([`virtio-blk read, ${interrupts === 'msix' ? 'MSI-X' : 'INTx'}`, 'µs / request', 'MB/s', 'cmds / request']));
    for (const size of [4096, 65536]) {
      for (const perNotify of [1, 8, 32]) {
        const buffers = Array.from({ length: perNotify }, () => bus.dma.alloc(size, 4096));
        const sectors = size / 512;
        let next = 0;
        const before = bus.qemu.client.commandsSent;
        let requests = 0;
        const us = await timePer(perNotify, async () => {
          await blk.batch(
            buffers.map((b) => {
              const sector = next;
              next = (next + sectors) % (IMAGE_BYTES / 512 - sectors);
              return { type: 'read' as const, sector, buffer: { addr: b.addr, len: size } };
            }),
          );
          requests += perNotify;
        });
        const cmds = (bus.qemu.client.commandsSent - before) / requests;
        console.log(row([`${size / 1024} KiB, ${perNotify} per notify`, us.toFixed(1), (size / us).toFixed(1), cmds.toFixed(1)]));
        for (const b of buffers) bus.dma.free(b);
      }
    }
  } finally {
    await blk.close();
  }
}

/** The peer: QEMU (a BusError saying how to install it when it is missing). */
export function checkPeer(): void {
  findQemu();
}

export async function run(): Promise<void> {
  const dir = await makeTempDir('virtio-ts-bench-');
  const image = join(dir.path, 'disk.img');
  await writeFile(image, new Uint8Array(IMAGE_BYTES));
  const bus = await QtestPciBus.launch({
    machine: 'q35',
    args: ['-drive', `if=none,id=d0,file=${image},format=raw`, '-device', 'virtio-blk-pci,drive=d0,disable-legacy=on,addr=0x4'],
  });
  try {
    await socketFigures(bus);
    console.log('');
    await blkFigures(bus, 'msix');
    console.log('');
    await blkFigures(bus, 'intx');
  } finally {
    await bus.close();
    await dir.remove();
  }
}
