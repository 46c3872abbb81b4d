/**
 * `virtio-ts demo`: our driver drives our devices across an in-process PCI bus. The devices are
 * modern-only, transitional or legacy-only (--mode), with or without MSI-X (--no-msix); the driver
 * may be forced onto the legacy interface (--force-legacy) or INTx (--interrupts intx). For each
 * device it prints the lspci -vv style decode and the probe decision, the interface and interrupts
 * the driver committed to, what a transitional device ignored, the features offered and accepted and
 * the queues; then it writes a pseudo-random pattern across the disk through the blk driver, reads
 * it back, checks the checksums (also of the image file itself) and prints the throughput.
 */

import type { Command } from 'commander';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlkDriver, type BlkOp } from '../../driver/blk/blk-driver.js';
import type { DmaBuffer } from '../../memory/dma.js';
import { RngDriver } from '../../driver/rng/rng-driver.js';
import type { VirtioDriver } from '../../driver/virtio-driver.js';
import { UsageError } from '../../errors.js';
import type { InterruptMode } from '../../transport/pci/msix-driver.js';
import type { VirtioPciFunction, VirtioPciMode } from '../../transport/pci/virtio-pci-function.js';
import { VIRTIO_BLK_SECTOR_SIZE } from '../../spec/blk.js';
import { decodeDeviceFeatures } from '../../spec/feature-names.js';
import { deviceTypeName } from '../../spec/ids.js';
import { consoleDemo, netDemo } from '../demo-net-console.js';
import { buildDemoMachine, describeFunction } from '../demo-machine.js';
import { fillPattern } from '../fill-pattern.js';

interface DemoOptions {
  readonly disk?: string;
  readonly size: string;
  readonly mode: string;
  readonly forceLegacy?: boolean;
  readonly msix: boolean;
  readonly interrupts: string;
}

const MODES: readonly VirtioPciMode[] = ['modern', 'transitional', 'legacy'];
const INTERRUPT_MODES: readonly InterruptMode[] = ['auto', 'msix', 'intx'];

/** --mode, checked. */
export function parseMode(mode: string): VirtioPciMode {
  const found = MODES.find((m) => m === mode);
  if (found === undefined) throw new UsageError(`--mode ${mode}: one of ${MODES.join(', ')}`);
  return found;
}

function parseInterrupts(value: string): InterruptMode {
  const found = INTERRUPT_MODES.find((m) => m === value);
  if (found === undefined) throw new UsageError(`--interrupts ${value}: one of ${INTERRUPT_MODES.join(', ')}`);
  return found;
}

/** Bytes per request and requests per batch of the pattern pass. */
const CHUNK = 64 * 1024;
const BATCH = 32;

/** Which interface the driver committed to, its interrupts, and what the device saw of it (call before close). */
function describeCommitment(drv: VirtioDriver, fn: VirtioPciFunction | undefined): string[] {
  const lines = [`\tDriver: ${drv.transport.kind} interface${drv.probe.kind === 'legacy' && drv.probe.forced ? ' (forced)' : ''}; interrupts: ${drv.interrupts?.description ?? 'none set up'}`];
  const arbiter = fn?.arbiter;
  if (arbiter !== undefined) {
    const last = arbiter.lastIgnored === undefined ? '' : ` (last: ${arbiter.lastIgnored})`;
    lines.push(`\tTransitional device: driver committed to ${arbiter.committed ?? 'no interface yet'}; ${arbiter.ignoredAccesses} accesses through the other interface ignored${last}`);
  }
  return lines;
}

function describeDriver(drv: VirtioDriver, accepted: bigint): string[] {
  return [
    `\tFeatures offered:  ${decodeDeviceFeatures(drv.deviceType, drv.deviceFeatures)}`,
    `\tFeatures accepted: ${decodeDeviceFeatures(drv.deviceType, accepted)}`,
  ];
}

function rate(bytes: number, ms: number): string {
  return `${((bytes / (1 << 20)) / (ms / 1000)).toFixed(1)} MiB/s`;
}

async function runDemo(options: DemoOptions): Promise<void> {
  const sizeMiB = Number(options.size);
  if (!Number.isInteger(sizeMiB) || sizeMiB < 1 || sizeMiB > 4096) throw new UsageError(`--size ${options.size}: a whole number of MiB from 1 to 4096`);
  const tmp = options.disk === undefined ? await mkdtemp(join(tmpdir(), 'virtio-ts-demo-')) : undefined;
  const diskPath = options.disk ?? join(tmp!, 'disk.img');
  if (tmp !== undefined) {
    await writeFile(diskPath, new Uint8Array(0));
    await truncate(diskPath, sizeMiB << 20);
  }
  const mode = parseMode(options.mode);
  const interrupts = parseInterrupts(options.interrupts);
  const forceLegacy = options.forceLegacy === true;
  const { machine, rng, blk, functions, disk } = await buildDemoMachine(diskPath, { mode, msix: options.msix });
  const bus = machine.bus;
  const driverOptions = { forceLegacy, interrupts };
  try {
    const how = [`${mode} devices`, `MSI-X ${options.msix ? 'on' : 'off'}`, ...(forceLegacy ? ['driver forced to legacy'] : []), ...(interrupts !== 'auto' ? [`interrupts ${interrupts}`] : [])];
    console.log(`virtio-ts demo: our driver and our devices on an in-process PCI bus (${how.join(', ')})\n`);

    const rngDesc = await describeFunction(bus, rng, { forceLegacy });
    const rngDrv = await RngDriver.open(bus, rng, driverOptions);
    console.log(rngDesc.text);
    console.log(describeDriver(rngDrv.virtio, rngDrv.virtio.features).join('\n'));
    console.log(`\tQueues: requestq (0)`);
    const entropy = await rngDrv.read(32);
    console.log(`\t${deviceTypeName(rngDrv.virtio.deviceType)}: 32 bytes read: ${Buffer.from(entropy).toString('hex')}`);
    console.log(`${describeCommitment(rngDrv.virtio, functions.get(rng)).join('\n')}\n`);
    await rngDrv.close();

    const blkDesc = await describeFunction(bus, blk, { forceLegacy });
    const blkDrv = await BlkDriver.open(bus, blk, driverOptions);
    console.log(blkDesc.text);
    console.log(describeDriver(blkDrv.virtio, blkDrv.virtio.features).join('\n'));
    console.log(`\tQueues: ${blkDrv.numQueues} request queue(s), up to ${blkDrv.maxInFlight} requests in flight each`);
    console.log(`\tDisk: ${diskPath}, ${blkDrv.capacity} sectors (${(blkDrv.capacity * VIRTIO_BLK_SECTOR_SIZE) / (1 << 20)} MiB), serial "${await blkDrv.getId()}"`);
    console.log(`${describeCommitment(blkDrv.virtio, functions.get(blk)).join('\n')}\n`);

    const total = blkDrv.capacity * VIRTIO_BLK_SECTOR_SIZE;
    const chunk = Math.min(CHUNK, total);
    const buffers: DmaBuffer[] = [];
    for (let i = 0; i < BATCH; i++) buffers.push(bus.dma.alloc(chunk, 4096));
    const sectorsPerChunk = chunk / VIRTIO_BLK_SECTOR_SIZE;
    const chunks = Math.floor(total / chunk);
    const written = createHash('sha256');
    let seed = 0x7f4a7c15;
    let start = performance.now();
    for (let c = 0; c < chunks; c += BATCH) {
      const ops: BlkOp[] = [];
      for (let i = 0; i < BATCH && c + i < chunks; i++) {
        const buf = buffers[i]!;
        seed = fillPattern(buf.bytes.subarray(0, chunk), seed);
        written.update(buf.bytes.subarray(0, chunk));
        ops.push({ type: 'write', sector: (c + i) * sectorsPerChunk, buffer: { addr: buf.addr, len: chunk } });
      }
      await blkDrv.batch(ops);
    }
    await blkDrv.flush();
    const writeMs = performance.now() - start;

    const readBack = createHash('sha256');
    start = performance.now();
    for (let c = 0; c < chunks; c += BATCH) {
      const ops: BlkOp[] = [];
      for (let i = 0; i < BATCH && c + i < chunks; i++) ops.push({ type: 'read', sector: (c + i) * sectorsPerChunk, buffer: { addr: buffers[i]!.addr, len: chunk } });
      await blkDrv.batch(ops);
      for (let i = 0; i < ops.length; i++) readBack.update(buffers[i]!.bytes.subarray(0, chunk));
    }
    const readMs = performance.now() - start;
    for (const b of buffers) bus.dma.free(b);
    await blkDrv.close();

    const bytes = chunks * chunk;
    const wantSum = written.digest('hex');
    const gotSum = readBack.digest('hex');
    const fileSum = createHash('sha256').update((await readFile(diskPath)).subarray(0, bytes)).digest('hex');
    console.log(`pattern: ${bytes / (1 << 20)} MiB in ${chunks} requests of ${chunk / 1024} KiB, ${BATCH} per notify`);
    console.log(`  write + flush  ${writeMs.toFixed(0)} ms  ${rate(bytes, writeMs)}`);
    console.log(`  read           ${readMs.toFixed(0)} ms  ${rate(bytes, readMs)}`);
    console.log(`  sha256 written    ${wantSum}`);
    console.log(`  sha256 read back  ${gotSum}`);
    console.log(`  sha256 image file ${fileSum}`);
    if (wantSum !== gotSum || wantSum !== fileSum) {
      console.log('checksums DIFFER');
      process.exitCode = 1;
    } else {
      console.log('checksums verified: driver read-back and image file match what was written');
    }

    // Net has 3 queues (rx, tx, ctrl), console with one port 2: a vector each plus config.
    const fnOptions = (queues: number) => ({ mode, msixVectors: options.msix ? queues + 1 : 0 });
    console.log(`\n${(await netDemo(fnOptions(3), driverOptions)).join('\n')}`);
    console.log(`\n${(await consoleDemo(fnOptions(2), driverOptions)).join('\n')}`);
  } finally {
    await disk.close();
    if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
  }
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('drive virtio-rng, virtio-blk (verified disk pattern), virtio-net (two machines) and virtio-console through our drivers')
    .option('--disk <path>', 'use this disk image (its contents are overwritten) instead of a temporary one')
    .option('--size <MiB>', 'size of the temporary disk image', '64')
    .option('--mode <mode>', 'devices are modern (modern-only), transitional or legacy (legacy-only)', 'modern')
    .option('--force-legacy', "drive transitional devices through their legacy interface (Linux's virtio_pci.force_legacy)")
    .option('--no-msix', 'devices without MSI-X (INTx only)')
    .option('--interrupts <how>', 'auto (MSI-X per queue, shared, then INTx), msix or intx', 'auto')
    .action((opts: DemoOptions) => runDemo(opts));
}
