/**
 * `virtio-ts lspci`: the lspci -vv style decode of the demo machine's virtio functions, the probe
 * decision, and the ring format a driver negotiates there (--ring).
 */

import type { Command } from 'commander';
import { MemoryBlockBackend } from '../../device/blk/memory-backend.js';
import { VirtioDriver } from '../../driver/virtio-driver.js';
import { buildDemoMachine, describeFunction } from '../demo-machine.js';
import { checkRingInterface, describeRing, parseRing } from '../ring-option.js';
import { legacyOnly, parseMode, RING_HELP } from './demo.js';

interface LspciOptions {
  readonly mode: string;
  readonly forceLegacy?: boolean;
  readonly msix: boolean;
  readonly ring?: string;
}

const LSPCI_DISK_BYTES = 1 << 20;

async function runLspci(options: LspciOptions): Promise<void> {
  const mode = parseMode(options.mode);
  const forceLegacy = options.forceLegacy === true;
  const ring = parseRing(options.ring);
  checkRingInterface(ring, legacyOnly(mode, forceLegacy));
  // Only the functions are decoded: an in-memory disk does, and leaves no file behind.
  const { machine, rng, blk } = buildDemoMachine(new MemoryBlockBackend(LSPCI_DISK_BYTES), {
    mode,
    msix: options.msix,
    packed: ring !== undefined,
  });
  for (const fn of [rng, blk]) {
    const { text } = await describeFunction(machine.bus, fn, { forceLegacy });
    // Negotiation only (no queue, no DRIVER_OK): enough to know the ring format.
    const drv = await VirtioDriver.open(machine.bus, fn, { forceLegacy, ring: ring ?? 'auto' });
    try {
      await drv.negotiate(0n);
      console.log(`${text}\n\tRing: ${describeRing(drv)}\n`);
    } finally {
      await drv.close();
    }
  }
}

export function register(program: Command): void {
  program
    .command('lspci')
    .description("decode the demo machine's virtio PCI functions as lspci -vv does, with the probe's decision and the negotiated ring")
    .option('--mode <mode>', 'devices are modern (modern-only), transitional or legacy (legacy-only)', 'modern')
    .option('--force-legacy', 'probe as a driver forcing the legacy interface would')
    .option('--no-msix', 'devices without MSI-X')
    .option('--ring <format>', RING_HELP)
    .action((opts: LspciOptions) => runLspci(opts));
}
