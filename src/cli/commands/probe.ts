/**
 * `virtio-ts probe --qemu "<-device string>"`: starts QEMU with that device and no guest, and shows
 * what our driver half makes of it: the lspci -vv style decode, the probe's decision, the offered
 * and negotiated features, and, for the device types we have drivers for, real data moved.
 * Works for any virtio device QEMU has, up to feature negotiation.
 */

import type { Command } from 'commander';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../../errors.js';
import { formatBdf, type Bdf } from '../../driver/pci-bus.js';
import { readConfigSpace } from '../../driver/pci/config-space.js';
import { formatLspci } from '../../driver/pci/lspci.js';
import { VirtioDriver } from '../../driver/virtio-driver.js';
import { QtestPciBus } from '../../platform/qtest/qtest-pci-bus.js';
import type { QemuMachine } from '../../platform/qtest/qemu-process.js';
import { probe } from '../../transport/pci/probe.js';
import { VIRTIO_BLK_FEATURE_NAMES } from '../../spec/blk.js';
import { VIRTIO_CONSOLE_FEATURE_NAMES } from '../../spec/console.js';
import { decodeFeatures } from '../../spec/features.js';
import { deviceTypeName, VIRTIO_ID_BLOCK, VIRTIO_ID_CONSOLE, VIRTIO_ID_NET } from '../../spec/ids.js';
import { VIRTIO_NET_FEATURE_NAMES } from '../../spec/net.js';
import { decodeStatus } from '../../spec/status.js';

/** Device-specific feature names by device type, for decoding. */
const FEATURE_NAMES: ReadonlyMap<number, ReadonlyMap<number, string>> = new Map([
  [VIRTIO_ID_NET, VIRTIO_NET_FEATURE_NAMES],
  [VIRTIO_ID_BLOCK, VIRTIO_BLK_FEATURE_NAMES],
  [VIRTIO_ID_CONSOLE, VIRTIO_CONSOLE_FEATURE_NAMES],
]);

interface ProbeCommandOptions {
  readonly qemu: string;
  readonly machine: string;
  readonly forceLegacy?: boolean;
  readonly qemuArg: string[];
}

/** A -device string's properties, "virtio-blk-pci,drive=d0" -> model and a property lookup. */
function parseDevice(device: string): { model: string; has(prop: string): boolean } {
  const [model = '', ...props] = device.split(',');
  const names = new Set(props.map((p) => p.split('=')[0]));
  return { model, has: (prop) => names.has(prop) };
}

/**
 * QEMU arguments for the device, with the backend it cannot start without when the user gave none:
 * a scratch raw image for virtio-blk, a scratch directory for virtio-9p.
 */
async function deviceArgs(device: string, scratch: string): Promise<string[]> {
  const d = parseDevice(device);
  if (d.model === 'virtio-blk-pci' && !d.has('drive')) {
    const image = join(scratch, 'probe.img');
    await writeFile(image, new Uint8Array(1 << 20));
    return ['-drive', `if=none,id=probe-drive,file=${image},format=raw`, '-device', `${device},drive=probe-drive`];
  }
  if (d.model === 'virtio-9p-pci' && !d.has('fsdev')) {
    return ['-fsdev', `local,id=probe-fs,path=${scratch},security_model=none`, '-device', `${device},fsdev=probe-fs,mount_tag=probe`];
  }
  return ['-device', device];
}

function machineOf(name: string): QemuMachine {
  if (name !== 'pc' && name !== 'q35') throw new UsageError(`--machine ${name}: use pc or q35`);
  return name;
}

/** Decode, probe and negotiate one virtio function; prints as it goes. */
async function probeFunction(bus: QtestPciBus, fn: Bdf, forceLegacy: boolean, print: (line: string) => void): Promise<void> {
  const decision = await probe(bus, fn, { forceLegacy });
  print(formatLspci(fn, await readConfigSpace(bus, fn), decision.bars));
  print('');
  const names = FEATURE_NAMES.get(decision.deviceType);
  print(`device type: ${decision.deviceType} (${deviceTypeName(decision.deviceType)})`);
  print(`probe: ${decision.kind}: ${decision.explanation}`);
  for (const note of decision.notes) print(`  note: ${note}`);
  const driver = await VirtioDriver.open(bus, fn, { forceLegacy });
  try {
    print(`offered features: ${decodeFeatures(driver.deviceFeatures, names) || '(none)'}`);
    const accepted = await driver.negotiate(driver.deviceFeatures);
    print(`negotiated features: ${decodeFeatures(accepted, names) || '(none)'}`);
    print(`device status: ${decodeStatus(await driver.checkStatus())}`);
  } finally {
    await driver.close();
  }
}

async function runProbe(options: ProbeCommandOptions): Promise<void> {
  const machine = machineOf(options.machine);
  const scratch = await mkdtemp(join(tmpdir(), 'virtio-ts-probe-'));
  const print = (line: string): void => void process.stdout.write(`${line}\n`);
  try {
    const args = [...(await deviceArgs(options.qemu, scratch)), ...options.qemuArg];
    const bus = await QtestPciBus.launch({ machine, args });
    try {
      print(`QEMU -M ${machine} ${args.join(' ')}`);
      const functions = await VirtioDriver.find(bus);
      if (functions.length === 0) throw new UsageError(`no virtio PCI function found for -device ${options.qemu}`);
      for (const fn of functions) {
        print('');
        await probeFunction(bus, fn, options.forceLegacy ?? false, print).catch((err: unknown) => {
          print(`${formatBdf(fn)}: ${err instanceof Error ? err.message : String(err)}`);
          process.exitCode = 1;
        });
      }
    } finally {
      await bus.close();
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Adds `probe` to the CLI. */
export function register(program: Command): void {
  program
    .command('probe')
    .description("start QEMU with one virtio device and show what our driver half makes of it (decode, probe decision, features)")
    .requiredOption('--qemu <device>', 'a QEMU -device string, e.g. "virtio-net-pci,disable-legacy=on"')
    .option('--machine <machine>', 'QEMU machine: pc or q35', 'q35')
    .option('--force-legacy', 'use the legacy interface of a transitional device')
    .option('--qemu-arg <arg>', 'one more QEMU argument (repeat for each, e.g. --qemu-arg=-netdev --qemu-arg=user,id=n0)', (arg: string, all: string[]) => [...all, arg], [] as string[])
    .action((options: ProbeCommandOptions) => runProbe(options));
}
