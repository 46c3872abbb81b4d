/**
 * QEMU's virtio-blk-pci through our driver over qtest: 4 KiB and 64 KiB reads with 1, 8 and 32
 * requests per notify, beside the cost of the qtest socket itself (one command awaited at a time
 * versus pipelined, and bulk b64read) measured on the same QEMU in the same run. The socket is the
 * bottleneck: a request costs a fixed number of round trips, so batching requests per notify is
 * what moves the figures. Both interrupt paths are measured: MSI-X (the driver's default) and INTx.
 *
 * Each figure is given in wall time and in CPU time: this process's (bench/clock.ts) and QEMU's
 * (from /proc, in clock ticks of 10 ms, so only its sum over a run means anything). The disk holds a
 * pseudo-random pattern; after each row one more batch reads into cleared buffers and every byte is
 * compared with the image, and the socket rows check what b64read and readl returned, so a row that
 * moved nothing fails the bench. The references: the socket rows for the blk rows (same QEMU, same run).
 */

import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlkDriver } from '../src/driver/blk/blk-driver.js';
import { bdf } from '../src/bus/pci-bus.js';
import { makeTempDir } from '../src/platform/cleanup.js';
import { findQemu } from '../src/platform/qtest/qemu-process.js';
import { QtestPciBus } from '../src/platform/qtest/qtest-pci-bus.js';
import type { DmaBuffer } from '../src/memory/dma.js';
import { b64readCommand, readCommand } from '../src/platform/qtest/qtest-protocol.js';
import { fillPattern } from '../src/cli/fill-pattern.js';
import { Clock } from './clock.js';

const RUN_MS = 1000;
const IMAGE_BYTES = 16 << 20;

/** Microseconds per operation: wall, this process's CPU, QEMU's CPU. */
interface Cost {
  readonly wall: number;
  readonly cpu: number;
  readonly qemuCpu: number;
}

/** QEMU's CPU time so far, in ms: utime + stime of /proc/<pid>/stat, in USER_HZ (100) ticks. */
function qemuCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces), which ends at the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Runs `step` (which does `units` operations) until RUN_MS has passed; returns the cost per operation. */
async function timePer(pid: number, units: number, step: () => Promise<void>): Promise<Cost> {
  await step(); // warm-up
  let done = 0;
  const clock = new Clock();
  const qemu0 = qemuCpuMs(pid);
  clock.start();
  while (clock.wallMs < RUN_MS) {
    await step();
    done += units;
    clock.stop();
    clock.start();
  }
  clock.stop();
  const perOp = (ms: number): number => (ms * 1e3) / done;
  return { wall: perOp(clock.wallMs), cpu: perOp(clock.cpuMs), qemuCpu: perOp(qemuCpuMs(pid) - qemu0) };
}

function row(cells: Array<string | number>): string {
  return cells.map((c, i) => (i === 0 ? String(c).padEnd(34) : String(c).padStart(16))).join('');
}

const us = (x: number): string => x.toFixed(1);

async function socketFigures(bus: QtestPciBus): Promise<void> {
  const client = bus.qemu.client;
  const pid = bus.qemu.pid;
  // What readl and b64read read: a pattern the bench put in QEMU's RAM.
  const known = bus.dma.alloc(65536, 4096);
  fillPattern(known.bytes, 0x5eed);
  await bus.dma.flush(known.addr, known.bytes.length);
  const word = new DataView(known.bytes.buffer, known.bytes.byteOffset).getUint32(0, true);
  const readl = async (): Promise<void> => {
    const reply = await client.request(readCommand(4, known.addr));
    if (Number(reply) !== word) throw new Error(`qemu-blk bench: readl returned ${reply}, QEMU's RAM holds 0x${word.toString(16)}`);
  };
  console.log(row(['qtest command', 'µs / command', 'cpu µs', 'QEMU cpu µs', 'MB/s']));
  const serial = await timePer(pid, 100, async () => {
    for (let i = 0; i < 100; i++) await readl();
  });
  console.log(row(['readl, awaited one by one', us(serial.wall), us(serial.cpu), us(serial.qemuCpu), '']));
  const pipelined = await timePer(pid, 1000, async () => {
    const replies: Promise<void>[] = [];
    for (let i = 0; i < 1000; i++) replies.push(readl());
    await Promise.all(replies);
  });
  console.log(row(['readl, 1000 pipelined', us(pipelined.wall), us(pipelined.cpu), us(pipelined.qemuCpu), '']));
  for (const size of [4096, 65536]) {
    const expected = Buffer.from(known.bytes.subarray(0, size)).toString('base64');
    const cost = await timePer(pid, 1, async () => {
      if ((await client.request(b64readCommand(known.addr, size))) !== expected)
        throw new Error(`qemu-blk bench: b64read of ${size} bytes did not return QEMU's RAM`);
    });
    console.log(row([`b64read ${size / 1024} KiB`, us(cost.wall), us(cost.cpu), us(cost.qemuCpu), (size / cost.wall).toFixed(0)]));
  }
  bus.dma.free(known);
}

/**
 * Reads of `size` bytes, `perNotify` per batch (one submission round, one notify), spread over the
 * disk, with completions signalled by `interrupts` (MSI-X: a mailbox in guest RAM the bus polls;
 * INTx: QEMU's IRQ lines on the socket, then an ISR read).
 */
async function blkFigures(bus: QtestPciBus, image: Uint8Array, interrupts: 'msix' | 'intx'): Promise<void> {
  const blk = await BlkDriver.open(bus, bdf(0, 4, 0), { interrupts });
  try {
    console.log(
      row([
        `virtio-blk read, ${interrupts === 'msix' ? 'MSI-X' : 'INTx'}`,
        'µs / request',
        'cpu µs',
        'QEMU cpu µs',
        'MB/s',
        'cmds / request',
      ]),
    );
    for (const size of [4096, 65536]) {
      for (const perNotify of [1, 8, 32]) {
        const buffers = Array.from({ length: perNotify }, () => bus.dma.alloc(size, 4096));
        const sectors = size / 512;
        let next = 0;
        const before = bus.qemu.client.commandsSent;
        let requests = 0;
        const reads = (): Array<{ type: 'read'; sector: number; buffer: { addr: number; len: number } }> =>
          buffers.map((b) => {
            const sector = next;
            next = (next + sectors) % (IMAGE_BYTES / 512 - sectors);
            return { type: 'read' as const, sector, buffer: { addr: b.addr, len: size } };
          });
        const cost = await timePer(bus.qemu.pid, perNotify, async () => {
          await blk.batch(reads());
          requests += perNotify;
        });
        const cmds = (bus.qemu.client.commandsSent - before) / requests;
        console.log(
          row([
            `${size / 1024} KiB, ${perNotify} per notify`,
            us(cost.wall),
            us(cost.cpu),
            us(cost.qemuCpu),
            (size / cost.wall).toFixed(1),
            cmds.toFixed(1),
          ]),
        );
        await verifyReads(bus, blk, buffers, reads(), image);
        for (const b of buffers) bus.dma.free(b);
      }
    }
  } finally {
    await blk.close();
  }
}

/**
 * One more batch of `ops` into `buffers` cleared first (in QEMU's RAM too), then every byte compared
 * with the image: throws when a read did not bring its sectors.
 */
async function verifyReads(
  bus: QtestPciBus,
  blk: BlkDriver,
  buffers: readonly DmaBuffer[],
  ops: ReadonlyArray<{ type: 'read'; sector: number; buffer: { addr: number; len: number } }>,
  image: Uint8Array,
): Promise<void> {
  for (const b of buffers) {
    b.bytes.fill(0);
    await bus.dma.flush(b.addr, b.bytes.length);
  }
  await blk.batch(ops);
  for (const [k, op] of ops.entries()) {
    const b = buffers[k]!;
    await bus.dma.refresh(b.addr, op.buffer.len);
    const at = op.sector * 512;
    if (Buffer.compare(b.bytes.subarray(0, op.buffer.len), image.subarray(at, at + op.buffer.len)) !== 0)
      throw new Error(`qemu-blk bench: the read of sector ${op.sector} did not bring the image's bytes`);
  }
}

/** The peer: QEMU (a BusError saying how to install it when it is missing). */
export function checkPeer(): void {
  findQemu();
}

export async function run(): Promise<void> {
  const dir = await makeTempDir('virtio-ts-bench-');
  const image = join(dir.path, 'disk.img');
  const bytes = new Uint8Array(IMAGE_BYTES);
  fillPattern(bytes, 0xb10c);
  await writeFile(image, bytes);
  const bus = await QtestPciBus.launch({
    machine: 'q35',
    args: ['-drive', `if=none,id=d0,file=${image},format=raw`, '-device', 'virtio-blk-pci,drive=d0,disable-legacy=on,addr=0x4'],
  });
  try {
    await socketFigures(bus);
    console.log('');
    await blkFigures(bus, bytes, 'msix');
    console.log('');
    await blkFigures(bus, bytes, 'intx');
  } finally {
    await bus.close();
    await dir.remove();
  }
}
