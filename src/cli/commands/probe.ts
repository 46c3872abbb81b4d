/**
 * `virtio-ts probe --qemu "<-device string>"`: starts QEMU with that device and no guest, and shows
 * what our driver half makes of it: the lspci -vv style decode, the probe's decision, the offered
 * and negotiated features, and, for the device types we have drivers for, real data moved and
 * checked at the far end (the backend this command gave the device). Works for any virtio device
 * QEMU has, up to feature negotiation.
 */

import type { Command } from 'commander';
import { open } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { UsageError } from '../../errors.js';
import { formatBdf, type Bdf } from '../../bus/pci-bus.js';
import { BlkDriver } from '../../driver/blk/blk-driver.js';
import { VirtioConsoleDriver } from '../../driver/console/console-driver.js';
import { VirtioNetDriver } from '../../driver/net/net-driver.js';
import { readConfigSpace } from '../../bus/config-space-reader.js';
import { formatLspci } from '../../driver/lspci.js';
import { describeSharedMemory } from '../../transport/pci/shared-memory-driver.js';
import { describeVendorData } from '../../transport/pci/vendor-cfg-driver.js';
import { RngDriver } from '../../driver/rng/rng-driver.js';
import { VirtioDriver, type VirtioDriverOptions } from '../../driver/virtio-driver.js';
import { makeTempDir } from '../../platform/cleanup.js';
import { QtestPciBus } from '../../platform/qtest/qtest-pci-bus.js';
import type { QemuMachine } from '../../platform/qtest/qemu-process.js';
import { withFreeUdpPorts } from '../../platform/qtest/udp-ports.js';
import { probe } from '../../transport/pci/probe.js';
import { VIRTIO_BLK_SECTOR_SIZE } from '../../spec/blk.js';
import { decodeDeviceFeatures } from '../../spec/feature-names.js';
import { deviceTypeName, VIRTIO_ID_BLOCK, VIRTIO_ID_CONSOLE, VIRTIO_ID_NET, VIRTIO_ID_RNG } from '../../spec/ids.js';
import { decodeStatus } from '../../spec/status.js';
import { checkRingInterface, describeRing, parseRing, type RingOption } from '../ring-option.js';
import { deviceArgs, parseDevice, releaseBackends, type Backends } from '../qemu-backends.js';

const DATA_TIMEOUT_MS = 5000;

interface ProbeCommandOptions {
  readonly qemu: string;
  readonly machine: string;
  readonly forceLegacy?: boolean;
  readonly ring?: string;
  readonly qemuArg: string[];
}

/** How every driver of this command opens its function: the interface (--force-legacy) and the ring (--ring). */
type How = Pick<VirtioDriverOptions, 'forceLegacy' | 'ring'>;

type Print = (line: string) => void;

function machineOf(name: string): QemuMachine {
  if (name !== 'pc' && name !== 'q35') throw new UsageError(`--machine ${name}: use pc or q35`);
  return name;
}

const hexBytes = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** What a device driver settled on (its own feature choice, not every offered bit), its ring and its interrupts: lines before the data line. */
function driverLine(core: VirtioDriver): string {
  return [
    `driver negotiated: ${decodeDeviceFeatures(core.deviceType, core.features)}`,
    `driver ring: ${describeRing(core)}`,
    `driver interrupts: ${core.interrupts?.description ?? 'none'}`,
  ].join('\n');
}

/** Read 32 bytes of entropy; with our backend file, they must be its first 32 bytes. */
async function rngData(bus: QtestPciBus, fn: Bdf, how: How, entropy: Uint8Array | undefined): Promise<string> {
  const rng = await RngDriver.open(bus, fn, { ...how, timeoutMs: DATA_TIMEOUT_MS });
  try {
    const bytes = await rng.read(32);
    const check =
      entropy === undefined
        ? ''
        : `; the backend file's first 32 bytes: ${Buffer.compare(bytes, entropy.subarray(0, 32)) === 0 ? 'same bytes' : 'DIFFERENT bytes'}`;
    return `${driverLine(rng.virtio)}\nread 32 bytes of entropy: ${hexBytes(bytes)}${check}`;
  } finally {
    await rng.close();
  }
}

/** Write a sector, read it back, and (with our scratch image) find it in the image file. */
async function blkData(bus: QtestPciBus, fn: Bdf, how: How, image: string | undefined): Promise<string> {
  const blk = await BlkDriver.open(bus, fn, { ...how, timeoutMs: DATA_TIMEOUT_MS });
  try {
    const sector = blk.capacity - 1;
    const data = Uint8Array.from({ length: VIRTIO_BLK_SECTOR_SIZE }, (_, i) => (i * 13 + 1) & 0xff);
    await blk.write(sector, data);
    await blk.flush();
    const back = await blk.read(sector, 1);
    let where = 'read back through the driver: ' + (Buffer.compare(back, data) === 0 ? 'same bytes' : 'DIFFERENT bytes');
    if (image !== undefined) {
      const file = await open(image, 'r');
      const onDisk = new Uint8Array(VIRTIO_BLK_SECTOR_SIZE);
      await file.read(onDisk, 0, onDisk.length, sector * VIRTIO_BLK_SECTOR_SIZE);
      await file.close();
      where += `; in the image file: ${Buffer.compare(onDisk, data) === 0 ? 'same bytes' : 'DIFFERENT bytes'}`;
    }
    return `${driverLine(blk.virtio)}\ncapacity ${blk.capacity} sectors, id "${await blk.getId()}"; wrote sector ${sector}, ${where}`;
  } finally {
    await blk.close();
  }
}

/** One frame each way between the driver and our host UDP socket. */
async function netData(bus: QtestPciBus, fn: Bdf, how: How, backend: Backends['net']): Promise<string> {
  const net = await VirtioNetDriver.open(bus, fn, { ...how, timeoutMs: DATA_TIMEOUT_MS });
  try {
    const mac = net.mac;
    if (backend === undefined)
      return `${driverLine(net.core)}\nMAC ${hexBytes(mac)}; no host socket of ours behind it (netdev given), so no frames sent`;
    const broadcast = new Uint8Array(6).fill(0xff);
    // An Ethernet frame with the local experimental EtherType 0x88b5 and a recognisable payload.
    const frame = (src: Uint8Array, dst: Uint8Array, text: string): Uint8Array =>
      Uint8Array.from([...dst, ...src, 0x88, 0xb5, ...Buffer.from(text)]);
    const out = frame(mac, broadcast, 'virtio-ts probe: driver to host');
    const arrived = new Promise<Buffer>((resolve) => backend.socket.once('message', (msg) => resolve(msg)));
    await net.send(out);
    const got = await Promise.race([arrived, sleep(DATA_TIMEOUT_MS, undefined, { ref: false })]);
    const sent = got !== undefined && Buffer.compare(got, out) === 0;
    const inbound = frame(Uint8Array.from([0x02, 0, 0, 0, 0, 1]), mac, 'virtio-ts probe: host to driver');
    backend.socket.send(inbound, backend.qemuPort, '127.0.0.1');
    const received = await net.receive(DATA_TIMEOUT_MS).catch(() => undefined);
    const recvOk = received !== undefined && Buffer.compare(received, inbound) === 0;
    return `${driverLine(net.core)}\nMAC ${hexBytes(mac)}; frame to the host socket: ${sent ? 'arrived intact' : 'NOT arrived'}; frame from the host socket: ${recvOk ? 'received intact' : 'NOT received'}`;
  } finally {
    await net.close();
  }
}

/** A line each way between the driver's console port and our unix socket. */
async function consoleData(bus: QtestPciBus, fn: Bdf, how: How, backend: Backends['console']): Promise<string> {
  const serial = await VirtioConsoleDriver.open(bus, fn, { ...how, timeoutMs: DATA_TIMEOUT_MS });
  try {
    const ports = `${serial.multiport ? `multiport, up to ${serial.maxPorts} ports` : 'one port'}`;
    if (backend === undefined) return `${driverLine(serial.core)}\n${ports}; no host socket of ours behind it (id given), so no bytes sent`;
    const port = await serial.waitPort('virtio-ts.probe', DATA_TIMEOUT_MS);
    await port.open();
    const out = Buffer.from('virtio-ts probe: driver to host\n');
    await port.write(out);
    const deadline = Date.now() + DATA_TIMEOUT_MS;
    while (Buffer.concat(backend.received).length < out.length && Date.now() < deadline) await sleep(5);
    const sent = Buffer.compare(Buffer.concat(backend.received).subarray(0, out.length), out) === 0;
    const inbound = Buffer.from('virtio-ts probe: host to driver\n');
    (await backend.peer).write(inbound);
    const back: Uint8Array[] = [];
    let got = 0;
    while (got < inbound.length) {
      const chunk = await port.read(inbound.length - got, DATA_TIMEOUT_MS).catch(() => undefined);
      if (chunk === undefined) break;
      back.push(chunk);
      got += chunk.length;
    }
    const recvOk = Buffer.compare(Buffer.concat(back), inbound) === 0;
    return `${driverLine(serial.core)}\n${ports}; port ${port.id} "${port.name ?? ''}" console=${port.isConsole}; line to the host socket: ${sent ? 'arrived intact' : 'NOT arrived'}; line from the host socket: ${recvOk ? 'received intact' : 'NOT received'}`;
  } finally {
    await serial.close();
  }
}

/** Moves data through the driver for `type`, or says there is none. */
function moveData(bus: QtestPciBus, fn: Bdf, type: number, how: How, backends: Backends): Promise<string> {
  switch (type) {
    case VIRTIO_ID_RNG:
      return rngData(bus, fn, how, backends.entropy);
    case VIRTIO_ID_BLOCK:
      return blkData(bus, fn, how, backends.image);
    case VIRTIO_ID_NET:
      return netData(bus, fn, how, backends.net);
    case VIRTIO_ID_CONSOLE:
      return consoleData(bus, fn, how, backends.console);
    default:
      return Promise.resolve(`no virtio-ts driver for ${deviceTypeName(type)}: stopped after feature negotiation`);
  }
}

/** Decode, probe, negotiate and move data on one virtio function; prints as it goes. */
async function probeFunction(bus: QtestPciBus, fn: Bdf, how: How, backends: Backends, print: Print): Promise<void> {
  const decision = await probe(bus, fn, { forceLegacy: how.forceLegacy ?? false });
  const driver = await VirtioDriver.open(bus, fn, how).catch((err: unknown) => err as Error);
  // Decoded after the driver has opened the function: BARs assigned, Interrupt Line filled in.
  print(formatLspci(fn, await readConfigSpace(bus, fn), decision.bars));
  print('');
  print(`device type: ${decision.deviceType} (${deviceTypeName(decision.deviceType)})`);
  print(`probe: ${decision.explanation}`);
  for (const note of decision.notes) print(`  note: ${note}`);
  if (decision.kind === 'modern') for (const region of decision.sharedMemory.values()) print(`  ${describeSharedMemory(region)}`);
  for (const vendor of decision.vendorData) print(`  ${describeVendorData(vendor)}`);
  if (driver instanceof Error) throw driver;
  try {
    print(`offered features: ${decodeDeviceFeatures(decision.deviceType, driver.deviceFeatures)}`);
    const accepted = await driver.negotiate(driver.deviceFeatures);
    print(`negotiated features (driver core, every offered bit it may accept): ${decodeDeviceFeatures(decision.deviceType, accepted)}`);
    print(`ring: ${describeRing(driver)}`);
    print(`interrupts: ${driver.interrupts?.description ?? 'none'}`);
    print(`device status: ${decodeStatus(await driver.checkStatus())}`);
  } finally {
    await driver.close();
  }
  const lines = (await moveData(bus, fn, decision.deviceType, how, backends)).split('\n');
  const data = lines.pop()!;
  for (const line of lines) print(line);
  print(`data: ${data}`);
}

/** The -device string for --ring: `packed=on` added for the packed ring unless the string sets `packed` itself. */
export function deviceForRing(device: string, ring: RingOption | undefined): string {
  return ring === 'packed' && !parseDevice(device).has('packed') ? `${device},packed=on` : device;
}

async function runProbe(options: ProbeCommandOptions): Promise<void> {
  const machine = machineOf(options.machine);
  const forceLegacy = options.forceLegacy ?? false;
  const ring = parseRing(options.ring);
  checkRingInterface(ring, forceLegacy ? '--force-legacy' : undefined);
  const how: How = { forceLegacy, ring: ring ?? 'auto' };
  const device = deviceForRing(options.qemu, ring);
  const scratch = await makeTempDir('virtio-ts-probe-');
  const print: Print = (line) => void process.stdout.write(`${line}\n`);
  const backends: Backends = {};
  try {
    let args: string[] = [];
    const bus = await withFreeUdpPorts(async (pickPort) => {
      args = [...(await deviceArgs(device, scratch.path, backends, pickPort)), ...options.qemuArg];
      return QtestPciBus.launch({ machine, args });
    });
    try {
      print(`QEMU -M ${machine} ${args.join(' ')}`);
      const functions = await VirtioDriver.find(bus);
      if (functions.length === 0) throw new UsageError(`no virtio PCI function found for -device ${options.qemu}`);
      for (const fn of functions) {
        print('');
        await probeFunction(bus, fn, how, backends, print).catch((err: unknown) => {
          print(`${formatBdf(fn)}: ${err instanceof Error ? err.message : String(err)}`);
          process.exitCode = 1;
        });
      }
    } finally {
      await bus.close();
    }
  } finally {
    releaseBackends(backends);
    await scratch.remove();
  }
}

/** Adds `probe` to the CLI. */
export function register(program: Command): void {
  program
    .command('probe')
    .description('start QEMU with one virtio device and show what our driver half makes of it: decode, probe decision, features, data')
    .requiredOption('--qemu <device>', 'a QEMU -device string, e.g. "virtio-net-pci,disable-legacy=on"')
    .option('--machine <machine>', 'QEMU machine: pc or q35', 'q35')
    .option('--force-legacy', 'use the legacy interface of a transitional device')
    .option(
      '--ring <format>',
      'split or packed: the ring format the driver negotiates (packed adds packed=on to the device); default: whatever the device offers, packed first',
    )
    .option(
      '--qemu-arg <arg>',
      'one more QEMU argument (repeat for each, e.g. --qemu-arg=-netdev --qemu-arg=user,id=n0)',
      (arg: string, all: string[]) => [...all, arg],
      [] as string[],
    )
    .action((options: ProbeCommandOptions) => runProbe(options));
}
