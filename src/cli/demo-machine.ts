/**
 * The machine `virtio-ts demo` and `virtio-ts lspci` build: an in-process PCI bus with a virtio-rng
 * and a virtio-blk device (file backend), and the text that describes each function as a driver
 * finds it.
 */

import { BlkDevice } from '../device/blk/blk-device.js';
import { FileBlockBackend } from '../device/blk/file-backend.js';
import { RngDevice } from '../device/rng/rng-device.js';
import { readConfigSpace } from '../driver/pci/config-space.js';
import { formatLspci } from '../driver/pci/lspci.js';
import type { Bdf, PciBus } from '../driver/pci-bus.js';
import { Machine } from '../platform/machine.js';
import { probe, type ProbeOptions, type ProbeResult } from '../transport/pci/probe.js';

export interface DemoMachine {
  readonly machine: Machine;
  readonly rng: Bdf;
  readonly blk: Bdf;
  readonly disk: FileBlockBackend;
}

/** A machine with virtio-rng and virtio-blk on the disk image at `diskPath`. */
export async function buildDemoMachine(diskPath: string): Promise<DemoMachine> {
  const machine = new Machine({ ramSize: 256 << 20 });
  const disk = await FileBlockBackend.open(diskPath);
  const rng = machine.plugVirtio(new RngDevice()).bdf;
  const blk = machine.plugVirtio(new BlkDevice({ backend: disk, serial: 'virtio-ts-demo' })).bdf;
  return { machine, rng, blk, disk };
}

/** Probe `fn` (assigning its BARs) and return the lspci -vv style decode and the probe decision. */
export async function describeFunction(bus: PciBus, fn: Bdf, options: ProbeOptions = {}): Promise<{ text: string; decision: ProbeResult }> {
  const decision = await probe(bus, fn, options);
  const cfg = await readConfigSpace(bus, fn);
  const lines = [formatLspci(fn, cfg, decision.bars), `\tProbe: ${decision.explanation}`];
  for (const note of decision.notes) lines.push(`\t       ${note}`);
  return { text: lines.join('\n'), decision };
}
