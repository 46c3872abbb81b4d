/**
 * MSI-X, driver side: choosing how a virtio function interrupts, as Linux's vp_find_vqs does:
 * 1. MSI-X with one vector for configuration changes and one per queue;
 * 2. else MSI-X with one vector for configuration changes and one shared by every queue;
 * 3. else INTx.
 * A plan fails when the table is too small, the bus cannot deliver a vector's message
 * (PciBus.msiMessage is undefined), or the device reads back another vector than the one written
 * (VIRTIO_MSI_NO_VECTOR: it cannot map it, 4.1.5.1.2). Table entries are programmed with the bus's
 * messages and unmasked before MSI-X Enable is set (PCI Local Bus 3.0 6.8.2).
 */

import { UsageError } from '../../errors.js';
import type { MsixCapability } from '../../bus/capabilities.js';
import { formatBdf, type Bdf, type PciBus } from '../../bus/pci-bus.js';
import { splitU64 } from '../../memory/guest-memory.js';
import {
  PCI_MSIX_ENTRY_DATA,
  PCI_MSIX_ENTRY_LOWER_ADDR,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_ENTRY_UPPER_ADDR,
  PCI_MSIX_ENTRY_VECTOR_CTRL,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
} from '../../spec/pci.js';
import { VIRTIO_MSI_NO_VECTOR } from '../../spec/virtio-pci.js';
import type { DriverTransport } from './driver-transport.js';
import type { ProbeResult } from './probe.js';

/** How the driver may be interrupted: 'auto' tries MSI-X and falls back (default), 'msix' insists, 'intx' never enables MSI-X. */
export type InterruptMode = 'auto' | 'msix' | 'intx';

/** What one MSI message stands for. */
export interface MsiRoute {
  readonly config: boolean;
  /** Queues to wake: their indices, or 'all' for the shared vector. */
  readonly queues: readonly number[] | 'all';
}

/** The interrupt set-up that was chosen. */
export interface InterruptPlan {
  readonly kind: 'msix-per-queue' | 'msix-shared' | 'intx';
  /** For people: "MSI-X: config vector 0, queues 1..2 (3 vectors)" or "INTx: <why not MSI-X>". */
  readonly description: string;
  /** What an MSI event means (undefined: not one of ours). */
  route(address: number, data: number): MsiRoute | undefined;
  /** The vector queue `index` gets when it is set up (VIRTIO_MSI_NO_VECTOR with INTx). */
  queueVector(index: number): number;
}

const key = (address: number, data: number): string => `${address}:${data >>> 0}`;

function intxPlan(why: string): InterruptPlan {
  return { kind: 'intx', description: `INTx (${why})`, route: () => undefined, queueVector: () => VIRTIO_MSI_NO_VECTOR };
}

/**
 * Set up interrupts for every queue the device has (call between feature negotiation and queue set-up: the
 * queue vectors are written before any queue is enabled). Throws UsageError for mode 'msix' when no
 * MSI-X plan works.
 */
export async function setupInterrupts(
  bus: PciBus,
  fn: Bdf,
  probe: ProbeResult,
  transport: DriverTransport,
  mode: InterruptMode,
): Promise<InterruptPlan> {
  const msix = probe.msix;
  let why: string;
  if (mode === 'intx') why = 'MSI-X not wanted';
  else if (msix === undefined) why = 'no MSI-X capability';
  else {
    const table = msixTableAddress(msix, probe);
    const failures: string[] = [];
    if (typeof table === 'string') failures.push(table);
    else {
      const numQueues = await transport.numQueues();
      const tries: ['msix-per-queue' | 'msix-shared', number][] = [['msix-per-queue', numQueues + 1]];
      if (numQueues > 1) tries.push(['msix-shared', 2]);
      for (const [kind, vectors] of tries) {
        const result = await tryPlan(bus, fn, msix, table.address, transport, numQueues, kind, vectors);
        if (typeof result !== 'string') return result;
        failures.push(result);
      }
      await disableMsix(bus, fn, msix, transport);
    }
    why = failures.join('; ');
  }
  if (mode === 'msix') throw new UsageError(`${formatBdf(fn)}: MSI-X cannot be used: ${why}`);
  return intxPlan(why);
}

/**
 * Where the MSI-X table starts, after checking (before any access) that the table and the PBA lie
 * inside the assigned memory BARs the capability names; otherwise why MSI-X cannot be used. (The
 * probe has checked that a legacy BAR0 holds the vector registers MSI-X adds.)
 */
function msixTableAddress(msix: MsixCapability, probe: ProbeResult): { address: number } | string {
  // PCI Local Bus 3.0 6.8.2: 16 bytes per table entry; one pending bit per entry, in whole QWORDs.
  const regions = [
    ['table', msix.tableBar, msix.tableOffset, msix.tableSize * PCI_MSIX_ENTRY_SIZE],
    ['PBA', msix.pbaBar, msix.pbaOffset, Math.ceil(msix.tableSize / 64) * 8],
  ] as const;
  let address = 0;
  for (const [name, index, offset, length] of regions) {
    const bar = probe.bars.find((b) => b.index === index && b.kind === 'memory' && b.base !== 0);
    if (bar === undefined) return `MSI-X ${name} BAR${index} is not an assigned memory BAR`;
    // offset < 2^32 and length < 2^16: the sum is exact.
    if (offset + length > bar.size)
      return `MSI-X ${name} [0x${offset.toString(16)}, +0x${length.toString(16)}) does not fit in BAR${index} (size 0x${bar.size.toString(16)})`;
    if (name === 'table') address = bar.base + offset;
  }
  return { address };
}

/** One plan: program `vectors` entries, enable MSI-X, assign and check the vectors. A string says why it failed. */
async function tryPlan(
  bus: PciBus,
  fn: Bdf,
  msix: MsixCapability,
  tableAddress: number,
  transport: DriverTransport,
  numQueues: number,
  kind: 'msix-per-queue' | 'msix-shared',
  vectors: number,
): Promise<InterruptPlan | string> {
  const label = kind === 'msix-per-queue' ? 'one vector per queue' : 'one shared queue vector';
  if (vectors > msix.tableSize) return `${label}: needs ${vectors} vectors, the table has ${msix.tableSize}`;
  const routes = new Map<string, MsiRoute>();
  const writes: Promise<void>[] = [];
  for (let v = 0; v < vectors; v++) {
    const message = bus.msiMessage(fn, v);
    if (message === undefined) return `${label}: the bus cannot deliver MSI vector ${v}`;
    routes.set(
      key(message.address, message.data),
      v === 0 ? { config: true, queues: [] } : { config: false, queues: kind === 'msix-shared' ? 'all' : [v - 1] },
    );
    const entry = tableAddress + v * PCI_MSIX_ENTRY_SIZE;
    const [lo, hi] = splitU64(message.address);
    writes.push(
      bus.memWrite(entry + PCI_MSIX_ENTRY_LOWER_ADDR, 4, lo),
      bus.memWrite(entry + PCI_MSIX_ENTRY_UPPER_ADDR, 4, hi),
      bus.memWrite(entry + PCI_MSIX_ENTRY_DATA, 4, message.data),
      bus.memWrite(entry + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 0),
    );
  }
  await Promise.all(writes);
  const control = await bus.configRead(fn, msix.offset + PCI_MSIX_FLAGS, 2);
  await bus.configWrite(fn, msix.offset + PCI_MSIX_FLAGS, 2, (control | PCI_MSIX_FLAGS_ENABLE) & ~PCI_MSIX_FLAGS_MASKALL);
  transport.msixChanged(true);
  const config = await transport.setConfigVector(0);
  if (config !== 0) return `${label}: the device read back config vector 0x${config.toString(16)} for 0`;
  const queueVector = (q: number): number => (kind === 'msix-shared' ? 1 : 1 + q);
  // Try the vectors here so that a refusal falls back to the next plan, as Linux's vp_find_vqs does;
  // each queue gets its vector again when it is set up. The shared plan tries queue 0 only: the
  // device's num_queues is not bounded by the table, and a hostile one could claim 65535 queues.
  const tried = kind === 'msix-shared' ? Math.min(numQueues, 1) : numQueues;
  for (let q = 0; q < tried; q++) {
    const want = queueVector(q);
    const got = await transport.setQueueVector(q, want);
    if (got !== want) return `${label}: the device read back vector 0x${got.toString(16)} for queue ${q} (wrote ${want})`;
  }
  const queues = kind === 'msix-shared' ? `queues share vector 1` : numQueues === 1 ? 'queue vector 1' : `queues 1..${numQueues}`;
  return {
    kind,
    description: `MSI-X, ${label}: config vector 0, ${queues} (${vectors} of ${msix.tableSize} vectors)`,
    route: (address, data) => routes.get(key(address, data)),
    queueVector,
  };
}

/** Unassign the config vector and turn MSI-X off again (the function falls back to INTx). */
export async function disableMsix(bus: PciBus, fn: Bdf, msix: MsixCapability, transport: DriverTransport): Promise<void> {
  await transport.setConfigVector(VIRTIO_MSI_NO_VECTOR);
  const control = await bus.configRead(fn, msix.offset + PCI_MSIX_FLAGS, 2);
  await bus.configWrite(fn, msix.offset + PCI_MSIX_FLAGS, 2, control & ~PCI_MSIX_FLAGS_ENABLE);
  transport.msixChanged(false);
}
