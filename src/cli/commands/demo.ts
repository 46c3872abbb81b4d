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
import { createReadStream } from 'node:fs';
import { truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileBlockBackend } from '../../device/blk/file-backend.js';
import { BlkDriver, type BlkOp } from '../../driver/blk/blk-driver.js';
import type { DmaBuffer } from '../../memory/dma.js';
import { RngDriver } from '../../driver/rng/rng-driver.js';
import type { VirtioDriver, VirtioDriverOptions } from '../../driver/virtio-driver.js';
import { HostFileError, UsageError } from '../../errors.js';
import { makeTempDir, type TempDir } from '../../platform/cleanup.js';
import type { InterruptMode } from '../../transport/pci/msix-driver.js';
import type { VirtioPciFunction, VirtioPciMode } from '../../transport/pci/virtio-pci-function.js';
import { VIRTIO_BLK_SECTOR_SIZE } from '../../spec/blk.js';
import { decodeDeviceFeatures } from '../../spec/feature-names.js';
import { deviceTypeName } from '../../spec/ids.js';
import { consoleDemo, netDemo } from '../demo-net-console.js';
import { buildDemoMachine, describeFunction } from '../demo-machine.js';
import { fillPattern } from '../fill-pattern.js';
import { checkRingInterface, describeRing, parseRing, type RingOption } from '../ring-option.js';

interface DemoOptions {
  readonly disk?: string;
  readonly size: string;
  readonly mode: string;
  readonly forceLegacy?: boolean;
  readonly msix: boolean;
  readonly interrupts: string;
  readonly ring?: string;
}

const MODES: readonly VirtioPciMode[] = ['modern', 'transitional', 'legacy'];
const INTERRUPT_MODES: readonly InterruptMode[] = ['auto', 'msix', 'intx'];

/** What --ring does in demo and lspci. */
export const RING_HELP =
  'split or packed: the devices offer the packed ring and the driver negotiates this format (default: devices without the packed ring, as QEMU)';

/** Which option confines the driver to the legacy interface, if any (for {@link checkRingInterface}). */
export function legacyOnly(mode: VirtioPciMode, forceLegacy: boolean): string | undefined {
  return mode === 'legacy' ? '--mode legacy' : forceLegacy ? '--force-legacy' : undefined;
}

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
/** Sizes are multiplied by this, never shifted: a shift is 32-bit in JavaScript (2048 << 20 is 0). */
const MIB = 2 ** 20;
const MAX_SIZE_MIB = 4096;
/** The smallest disk the demo runs on: one request of its pattern. */
export const DEMO_MIN_DISK_BYTES = CHUNK;

/** --size, checked: the temporary disk's size in bytes. */
export function parseDiskSize(size: string): number {
  const sizeMiB = Number(size);
  if (!Number.isSafeInteger(sizeMiB) || sizeMiB < 1 || sizeMiB > MAX_SIZE_MIB)
    throw new UsageError(`--size ${size}: a whole number of MiB from 1 to ${MAX_SIZE_MIB}`);
  return sizeMiB * MIB;
}

/** The disk: --disk as it is (checked), or a fresh temporary image of `bytes` bytes. */
async function openDisk(path: string | undefined, bytes: number): Promise<{ disk: FileBlockBackend; tmp?: TempDir }> {
  if (path !== undefined) {
    const disk = await FileBlockBackend.open(path);
    if (disk.size < DEMO_MIN_DISK_BYTES) {
      await disk.close();
      throw new HostFileError(
        'ERR_HOST_FILE_SIZE',
        path,
        `${disk.size} bytes is too small: the demo needs at least ${DEMO_MIN_DISK_BYTES} bytes (one ${CHUNK / 1024} KiB request)`,
      );
    }
    return { disk };
  }
  const tmp = await makeTempDir('virtio-ts-demo-');
  try {
    const image = join(tmp.path, 'disk.img');
    await writeFile(image, new Uint8Array(0));
    await truncate(image, bytes);
    return { disk: await FileBlockBackend.open(image), tmp };
  } catch (err) {
    await tmp.remove();
    throw err;
  }
}

/** The pattern pass's outcome: whether every byte of the disk was written, read back and found in the image file. */
export function patternVerdict(r: { bytes: number; diskBytes: number; written: string; readBack: string; imageFile: string }): {
  ok: boolean;
  text: string;
} {
  if (r.bytes === 0 || r.bytes !== r.diskBytes)
    return { ok: false, text: `NOT verified: the pattern covered ${r.bytes} of the disk's ${r.diskBytes} bytes` };
  if (r.written !== r.readBack || r.written !== r.imageFile) return { ok: false, text: 'checksums DIFFER' };
  return { ok: true, text: `checksums verified: driver read-back and image file match what was written (${r.bytes} bytes)` };
}

/** sha256 of the first `bytes` bytes of the file at `path`, streamed (an image may exceed what one buffer holds). */
async function fileSha256(path: string, bytes: number): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { start: 0, end: bytes - 1 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function mib(bytes: number): string {
  return `${(bytes / MIB).toFixed(bytes % MIB === 0 ? 0 : 2)} MiB`;
}

/** Which interface the driver committed to, its interrupts, and what the device saw of it (call before close). */
function describeCommitment(drv: VirtioDriver, fn: VirtioPciFunction | undefined): string[] {
  const lines = [
    `\tDriver: ${drv.transport.kind} interface${drv.probe.kind === 'legacy' && drv.probe.forced ? ' (forced)' : ''}; interrupts: ${drv.interrupts?.description ?? 'none set up'}`,
  ];
  const arbiter = fn?.arbiter;
  if (arbiter !== undefined) {
    const last = arbiter.lastIgnored === undefined ? '' : ` (last: ${arbiter.lastIgnored})`;
    lines.push(
      `\tTransitional device: driver committed to ${arbiter.committed ?? 'no interface yet'}; ${arbiter.ignoredAccesses} accesses through the other interface ignored${last}`,
    );
  }
  return lines;
}

function describeDriver(drv: VirtioDriver, accepted: bigint): string[] {
  return [
    `\tFeatures offered:  ${decodeDeviceFeatures(drv.deviceType, drv.deviceFeatures)}`,
    `\tFeatures accepted: ${decodeDeviceFeatures(drv.deviceType, accepted)}`,
    `\tRing: ${describeRing(drv)}`,
  ];
}

function rate(bytes: number, ms: number): string {
  return `${(bytes / MIB / (ms / 1000)).toFixed(1)} MiB/s`;
}

async function runDemo(options: DemoOptions): Promise<void> {
  // Every option is checked before anything is created.
  const mode = parseMode(options.mode);
  const interrupts = parseInterrupts(options.interrupts);
  const sizeBytes = parseDiskSize(options.size);
  const forceLegacy = options.forceLegacy === true;
  const ring = parseRing(options.ring);
  checkRingInterface(ring, legacyOnly(mode, forceLegacy));
  const { disk, tmp } = await openDisk(options.disk, sizeBytes);
  try {
    await demoOn(disk, { mode, interrupts, forceLegacy, msix: options.msix, ring });
  } finally {
    await disk.close();
    await tmp?.remove();
  }
}

async function demoOn(
  disk: FileBlockBackend,
  options: { mode: VirtioPciMode; interrupts: InterruptMode; forceLegacy: boolean; msix: boolean; ring: RingOption | undefined },
): Promise<void> {
  const { mode, interrupts, forceLegacy, ring } = options;
  // --ring given: the devices offer the packed ring and the driver takes the format named.
  const packed = ring !== undefined;
  const { machine, rng, blk, functions } = buildDemoMachine(disk, { mode, msix: options.msix, packed });
  const bus = machine.bus;
  const driverOptions: VirtioDriverOptions = { forceLegacy, interrupts, ring: ring ?? 'auto' };
  const how = [
    `${mode} devices`,
    `MSI-X ${options.msix ? 'on' : 'off'}`,
    ...(forceLegacy ? ['driver forced to legacy'] : []),
    ...(interrupts !== 'auto' ? [`interrupts ${interrupts}`] : []),
    ...(ring !== undefined ? [`${ring} ring`] : []),
  ];
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
  const total = blkDrv.capacity * VIRTIO_BLK_SECTOR_SIZE;
  console.log(blkDesc.text);
  console.log(describeDriver(blkDrv.virtio, blkDrv.virtio.features).join('\n'));
  console.log(`\tQueues: ${blkDrv.numQueues} request queue(s), up to ${blkDrv.maxInFlight} requests in flight each`);
  console.log(`\tDisk: ${disk.path}, ${blkDrv.capacity} sectors (${mib(total)}), serial "${await blkDrv.getId()}"`);
  console.log(`${describeCommitment(blkDrv.virtio, functions.get(blk)).join('\n')}\n`);

  // Requests of CHUNK bytes cover the whole disk; the last one takes what is left.
  const buffers: DmaBuffer[] = [];
  for (let i = 0; i < BATCH; i++) buffers.push(bus.dma.alloc(CHUNK, 4096));
  const chunks = Math.ceil(total / CHUNK);
  const request = (c: number, i: number): { sector: number; len: number } => {
    const offset = (c + i) * CHUNK;
    return { sector: offset / VIRTIO_BLK_SECTOR_SIZE, len: Math.min(CHUNK, total - offset) };
  };
  const written = createHash('sha256');
  let bytes = 0;
  let seed = 0x7f4a7c15;
  let start = performance.now();
  for (let c = 0; c < chunks; c += BATCH) {
    const ops: BlkOp[] = [];
    for (let i = 0; i < BATCH && c + i < chunks; i++) {
      const buf = buffers[i]!;
      const { sector, len } = request(c, i);
      seed = fillPattern(buf.bytes.subarray(0, len), seed);
      written.update(buf.bytes.subarray(0, len));
      ops.push({ type: 'write', sector, buffer: { addr: buf.addr, len } });
      bytes += len;
    }
    await blkDrv.batch(ops);
  }
  await blkDrv.flush();
  const writeMs = performance.now() - start;

  const readBack = createHash('sha256');
  start = performance.now();
  for (let c = 0; c < chunks; c += BATCH) {
    const lens: number[] = [];
    const ops: BlkOp[] = [];
    for (let i = 0; i < BATCH && c + i < chunks; i++) {
      const { sector, len } = request(c, i);
      lens.push(len);
      ops.push({ type: 'read', sector, buffer: { addr: buffers[i]!.addr, len } });
    }
    await blkDrv.batch(ops);
    lens.forEach((len, i) => readBack.update(buffers[i]!.bytes.subarray(0, len)));
  }
  const readMs = performance.now() - start;
  for (const b of buffers) bus.dma.free(b);
  await blkDrv.close();

  const wantSum = written.digest('hex');
  const gotSum = readBack.digest('hex');
  const fileSum = await fileSha256(disk.path, bytes);
  console.log(`pattern: ${mib(bytes)} in ${chunks} requests of up to ${CHUNK / 1024} KiB, ${BATCH} per notify`);
  console.log(`  write + flush  ${writeMs.toFixed(0)} ms  ${rate(bytes, writeMs)}`);
  console.log(`  read           ${readMs.toFixed(0)} ms  ${rate(bytes, readMs)}`);
  console.log(`  sha256 written    ${wantSum}`);
  console.log(`  sha256 read back  ${gotSum}`);
  console.log(`  sha256 image file ${fileSum}`);
  const verdict = patternVerdict({ bytes, diskBytes: disk.size, written: wantSum, readBack: gotSum, imageFile: fileSum });
  console.log(verdict.text);
  if (!verdict.ok) process.exitCode = 1;

  // Net has 3 queues (rx, tx, ctrl), console with one port 2: a vector each plus config.
  const fnOptions = (queues: number) => ({ mode, msixVectors: options.msix ? queues + 1 : 0, packed });
  console.log(`\n${(await netDemo(fnOptions(3), driverOptions)).join('\n')}`);
  console.log(`\n${(await consoleDemo(fnOptions(2), driverOptions)).join('\n')}`);
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('drive virtio-rng, virtio-blk (verified disk pattern), virtio-net (two machines) and virtio-console through our drivers')
    .option(
      '--disk <path>',
      `use this disk image (its contents are overwritten) instead of a temporary one: a whole number of sectors, at least ${DEMO_MIN_DISK_BYTES / 1024} KiB`,
    )
    .option('--size <MiB>', `size of the temporary disk image, 1 to ${MAX_SIZE_MIB}`, '64')
    .option('--mode <mode>', 'devices are modern (modern-only), transitional or legacy (legacy-only)', 'modern')
    .option('--force-legacy', "drive transitional devices through their legacy interface (Linux's virtio_pci.force_legacy)")
    .option('--no-msix', 'devices without MSI-X (INTx only)')
    .option('--interrupts <how>', 'auto (MSI-X per queue, shared, then INTx), msix or intx', 'auto')
    .option('--ring <format>', RING_HELP)
    .action((opts: DemoOptions) => runDemo(opts));
}
