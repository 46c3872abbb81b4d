/**
 * The machine `virtio-ts demo` and `virtio-ts lspci` build: an in-process PCI bus with a virtio-rng
 * and a virtio-blk device (on the backend given), each a modern-only, transitional or legacy-only function,
 * with or without MSI-X, and the text that describes each function as a driver finds it.
 */

import { BlkDevice } from '../device/blk/blk-device.js';
import type { BlockBackend } from '../device/blk/backend.js';
import { RngDevice } from '../device/rng/rng-device.js';
import { readConfigSpace } from '../bus/config-space-reader.js';
import { formatLspci } from '../driver/lspci.js';
import type { Bdf, PciBus } from '../bus/pci-bus.js';
import { Machine } from '../platform/machine.js';
import type { VirtioDevice } from '../core/virtio-device.js';
import { probe, type ProbeOptions, type ProbeResult } from '../transport/pci/probe.js';
import { describeSharedMemory } from '../transport/pci/shared-memory-driver.js';
import type { VirtioPciFunction, VirtioPciMode } from '../transport/pci/virtio-pci-function.js';

export interface DemoMachine {
  readonly machine: Machine;
  readonly rng: Bdf;
  readonly blk: Bdf;
  /** The functions themselves, keyed by their address (for the transitional arbiter's counters). */
  readonly functions: ReadonlyMap<Bdf, VirtioPciFunction>;
}

export interface DemoMachineOptions {
  /** Which interfaces the devices offer (default 'modern'). */
  readonly mode?: VirtioPciMode;
  /** Give each device MSI-X with one vector per queue plus config, as QEMU does (default true). */
  readonly msix?: boolean;
  /** The devices offer the packed ring (default false, as QEMU). */
  readonly packed?: boolean;
}

/** A machine with virtio-rng and virtio-blk on `disk` (which the caller opened and closes). */
export function buildDemoMachine(disk: BlockBackend, options: DemoMachineOptions = {}): DemoMachine {
  const machine = new Machine({ ramSize: 256 << 20 });
  const functions = new Map<Bdf, VirtioPciFunction>();
  const plug = (device: VirtioDevice): Bdf => {
    const msixVectors = options.msix === false ? 0 : device.queueMaxSizes.length + 1;
    const { bdf, fn } = machine.plugVirtio(device, { mode: options.mode ?? 'modern', msixVectors, packed: options.packed ?? false });
    functions.set(bdf, fn);
    return bdf;
  };
  const rng = plug(new RngDevice());
  const blk = plug(new BlkDevice({ backend: disk, serial: 'virtio-ts-demo' }));
  return { machine, rng, blk, functions };
}

/** Probe `fn` (assigning its BARs) and return the lspci -vv style decode and the probe decision. */
export async function describeFunction(bus: PciBus, fn: Bdf, options: ProbeOptions = {}): Promise<{ text: string; decision: ProbeResult }> {
  const decision = await probe(bus, fn, options);
  const cfg = await readConfigSpace(bus, fn);
  const lines = [formatLspci(fn, cfg, decision.bars), `\tProbe: ${decision.explanation}`];
  for (const note of decision.notes) lines.push(`\t       ${note}`);
  if (decision.kind === 'modern') for (const region of decision.sharedMemory.values()) lines.push(`\t${describeSharedMemory(region)}`);
  return { text: lines.join('\n'), decision };
}
