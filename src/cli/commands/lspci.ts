/** `virtio-ts lspci`: the lspci -vv style decode of the demo machine's virtio functions, and the probe decision. */

import type { Command } from 'commander';
import { MemoryBlockBackend } from '../../device/blk/memory-backend.js';
import { buildDemoMachine, describeFunction } from '../demo-machine.js';
import { parseMode } from './demo.js';

interface LspciOptions {
  readonly mode: string;
  readonly forceLegacy?: boolean;
  readonly msix: boolean;
}

const LSPCI_DISK_BYTES = 1 << 20;

async function runLspci(options: LspciOptions): Promise<void> {
  const mode = parseMode(options.mode);
  // Only the functions are decoded: an in-memory disk does, and leaves no file behind.
  const { machine, rng, blk } = buildDemoMachine(new MemoryBlockBackend(LSPCI_DISK_BYTES), { mode, msix: options.msix });
  for (const fn of [rng, blk])
    console.log(`${(await describeFunction(machine.bus, fn, { forceLegacy: options.forceLegacy === true })).text}\n`);
}

export function register(program: Command): void {
  program
    .command('lspci')
    .description("decode the demo machine's virtio PCI functions as lspci -vv does, with the probe's decision")
    .option('--mode <mode>', 'devices are modern (modern-only), transitional or legacy (legacy-only)', 'modern')
    .option('--force-legacy', 'probe as a driver forcing the legacy interface would')
    .option('--no-msix', 'devices without MSI-X')
    .action((opts: LspciOptions) => runLspci(opts));
}
