/** `virtio-ts lspci`: the lspci -vv style decode of the demo machine's virtio functions, and the probe decision. */

import type { Command } from 'commander';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDemoMachine, describeFunction } from '../demo-machine.js';
import { parseMode } from './demo.js';

interface LspciOptions {
  readonly mode: string;
  readonly forceLegacy?: boolean;
  readonly msix: boolean;
}

async function runLspci(options: LspciOptions): Promise<void> {
  const mode = parseMode(options.mode);
  const tmp = await mkdtemp(join(tmpdir(), 'virtio-ts-lspci-'));
  const diskPath = join(tmp, 'disk.img');
  await writeFile(diskPath, new Uint8Array(0));
  await truncate(diskPath, 1 << 20);
  const { machine, rng, blk, disk } = await buildDemoMachine(diskPath, { mode, msix: options.msix });
  try {
    for (const fn of [rng, blk]) console.log(`${(await describeFunction(machine.bus, fn, { forceLegacy: options.forceLegacy === true })).text}\n`);
  } finally {
    await disk.close();
    await rm(tmp, { recursive: true, force: true });
  }
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
