/**
 * A driver-side PciBus whose devices are QEMU's own (virtio-*-pci and anything else), reached over
 * the qtest protocol with no guest running: configuration space through ports 0xcf8/0xcfc
 * (configuration mechanism #1), BARs wherever the driver programs them from `resources` (no
 * firmware runs), DMA memory in guest RAM, INTx through the intercepted IOAPIC and MSI-X through
 * guest-RAM mailboxes.
 *
 * Writes are posted, as PCI memory writes are: they resolve once queued, QEMU performs them in
 * order before anything issued later, and a refused write fails the next awaited access. Reads
 * issued without awaiting the previous one are pipelined.
 */

import type { AccessSize } from '../../memory/access-size.js';
import { BusError, UsageError } from '../../errors.js';
import type { Bdf, BusResources, InterruptEvent, PciBus } from '../../bus/pci-bus.js';
import {
  PCI_CONFIG_ADDRESS_PORT,
  PCI_CONFIG_DATA_PORT,
  PCI_CONFIG_SPACE_SIZE,
  PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN,
} from '../../spec/pci.js';
import { enumerate } from '../../bus/enumerate.js';
import { GuestRamDma } from './guest-ram-dma.js';
import { IOAPIC_QOM_PATH, ioapicInputOf, PIIX3_BDF, PIIX3_PIRQRC, PIIX3_PIRQRC_VALUE } from './intx-routing.js';
import { MsiMailbox } from './msi-mailbox.js';
import { QemuProcess, type QemuOptions } from './qemu-process.js';
import { inCommand, irqInterceptInCommand, outCommand, parseHexValue, readCommand, writeCommand } from './qtest-protocol.js';

/** Configuration mechanism #1: the enable bit of the CONFIG_ADDRESS register. */
const CONFIG_ADDRESS_ENABLE = 0x8000_0000;

/**
 * Guest-physical layout, chosen so that nothing overlaps RAM holes or chipset ranges on either
 * machine: MSI mailboxes at 512 KiB (conventional memory), DMA from 1 MiB to the end of RAM,
 * 32-bit BARs in the PCI hole at 3.5 GiB (below the IOAPIC and the BIOS; q35's MMCONFIG window is
 * off until firmware enables it, and no firmware runs), 64-bit
 * BARs above 4 GiB (where both machines' 64-bit PCI hole starts for small RAM sizes), I/O BARs
 * at 0xc000 as SeaBIOS puts them.
 */
const MSI_MAILBOX_BASE = 0x8_0000;
const MSI_MAILBOX_SLOTS = 1024;
const DMA_BASE = 0x10_0000;
const RESOURCES: BusResources = {
  mem32: { base: 0xe000_0000, size: 0x1000_0000 },
  mem64: { base: 0x1_0000_0000, size: 0x1_0000_0000 },
  io: { base: 0xc000, size: 0x4000 },
};

export interface QtestPciBusOptions extends QemuOptions {
  /** How often MSI-X mailboxes are polled while someone listens, in ms. Default 1. */
  readonly msiPollMs?: number;
}

type Listener = (event: InterruptEvent) => void;

function checkSize(size: number): asserts size is AccessSize {
  if (size !== 1 && size !== 2 && size !== 4) throw new UsageError(`access size ${size}: use 1, 2 or 4`);
}

function checkBdf(fn: Bdf): void {
  if (!Number.isInteger(fn) || fn < 0 || fn > 0xffff) throw new UsageError(`bus/device/function ${fn} out of range`);
}

export class QtestPciBus implements PciBus {
  readonly name: string;
  readonly resources: BusResources = RESOURCES;
  readonly dma: GuestRamDma;
  private readonly msi: MsiMailbox;
  /** IOAPIC input of each bus-0 function with an INTx pin, found at launch. */
  private readonly intxLine = new Map<Bdf, number>();
  /** INTx listeners by IOAPIC input. */
  private readonly intx = new Map<number, Set<Listener>>();

  private constructor(
    readonly qemu: QemuProcess,
    msiPollMs: number,
  ) {
    this.name = `qemu-qtest (${qemu.machine})`;
    const ramEnd = qemu.memoryMiB * 0x10_0000;
    this.dma = new GuestRamDma(qemu.client, DMA_BASE, ramEnd - DMA_BASE);
    this.msi = new MsiMailbox(qemu.client, MSI_MAILBOX_BASE, MSI_MAILBOX_SLOTS, msiPollMs);
    qemu.client.onIrq((line, raised) => this.deliverIrq(line, raised));
  }

  /**
   * Starts QEMU with `options` and returns the bus on it, with INTx set up as firmware would do at
   * boot: PIRQ routing on pc (q35 needs none), every bus-0 function's Interrupt Line filled in,
   * and the IOAPIC's inputs intercepted before any device runs, so that no edge is missed. Kills
   * QEMU again if any of that fails.
   */
  static async launch(options: QtestPciBusOptions): Promise<QtestPciBus> {
    const qemu = await QemuProcess.start(options);
    try {
      const bus = new QtestPciBus(qemu, options.msiPollMs ?? 1);
      if (qemu.machine === 'pc') await bus.configWrite(PIIX3_BDF, PIIX3_PIRQRC, 4, PIIX3_PIRQRC_VALUE);
      await qemu.client.request(irqInterceptInCommand(IOAPIC_QOM_PATH));
      await bus.routeIntx();
      return bus;
    } catch (err) {
      await qemu.close();
      throw err;
    }
  }

  async configRead(fn: Bdf, offset: number, size: AccessSize): Promise<number> {
    const port = this.selectConfig(fn, offset, size);
    return this.hexReply(await this.qemu.client.request(inCommand(size, port)));
  }

  async configWrite(fn: Bdf, offset: number, size: AccessSize, value: number): Promise<void> {
    const port = this.selectConfig(fn, offset, size);
    this.qemu.client.post(outCommand(size, port, value >>> 0));
  }

  async memRead(addr: number, size: AccessSize): Promise<number> {
    checkSize(size);
    return this.hexReply(await this.qemu.client.request(readCommand(size, addr)));
  }

  async memWrite(addr: number, size: AccessSize, value: number): Promise<void> {
    checkSize(size);
    this.qemu.client.post(writeCommand(size, addr, value >>> 0));
  }

  async ioRead(port: number, size: AccessSize): Promise<number> {
    checkSize(size);
    return this.hexReply(await this.qemu.client.request(inCommand(size, port)));
  }

  async ioWrite(port: number, size: AccessSize, value: number): Promise<void> {
    checkSize(size);
    this.qemu.client.post(outCommand(size, port, value >>> 0));
  }

  /** Resolves when QEMU has performed every access issued so far; throws a refused posted write. */
  sync(): Promise<void> {
    return this.qemu.client.sync();
  }

  onInterrupt(fn: Bdf, listener: (event: InterruptEvent) => void): () => void {
    checkBdf(fn);
    const line = this.intxLine.get(fn);
    let subs: Set<Listener> | undefined;
    if (line !== undefined) {
      subs = this.intx.get(line) ?? new Set();
      this.intx.set(line, subs);
      subs.add(listener);
    }
    const unsubscribeMsi = this.msi.subscribe(fn, listener);
    return () => {
      subs?.delete(listener);
      unsubscribeMsi();
    };
  }

  msiMessage(fn: Bdf, vector: number): { address: number; data: number } | undefined {
    checkBdf(fn);
    if (!Number.isInteger(vector) || vector < 0 || vector > 0x7ff) throw new UsageError(`MSI-X vector ${vector} out of range`);
    return this.msi.message(fn, vector);
  }

  async close(): Promise<void> {
    this.msi.close();
    await this.qemu.close();
  }

  /** Points CONFIG_ADDRESS at the dword holding `offset` and returns the data port for the access. */
  private selectConfig(fn: Bdf, offset: number, size: AccessSize): number {
    checkBdf(fn);
    checkSize(size);
    if (!Number.isInteger(offset) || offset < 0 || offset + size > PCI_CONFIG_SPACE_SIZE || offset % size !== 0) {
      throw new UsageError(`config access of ${size} byte(s) at 0x${offset.toString(16)} is out of range or unaligned`);
    }
    this.qemu.client.post(outCommand(4, PCI_CONFIG_ADDRESS_PORT, (CONFIG_ADDRESS_ENABLE | (fn << 8) | (offset & 0xfc)) >>> 0));
    return PCI_CONFIG_DATA_PORT + (offset & 3);
  }

  private hexReply(value: string): number {
    const n = parseHexValue(value);
    if (n === undefined) throw new BusError(`${this.name}: expected a hex value from QEMU, got ${JSON.stringify(value)}`);
    return Number(n & 0xffff_ffffn);
  }

  /** Finds the IOAPIC input of every bus-0 function's INTx pin and writes it to its Interrupt Line. */
  private async routeIntx(): Promise<void> {
    for (const { bdf: fn } of await enumerate(this)) {
      const input = ioapicInputOf(this.qemu.machine, (fn >> 3) & 0x1f, await this.configRead(fn, PCI_INTERRUPT_PIN, 1));
      if (input === undefined) continue;
      this.intxLine.set(fn, input);
      await this.configWrite(fn, PCI_INTERRUPT_LINE, 1, input);
    }
  }

  private deliverIrq(line: number, raised: boolean): void {
    for (const listener of this.intx.get(line) ?? []) listener({ kind: 'intx', asserted: raised });
  }
}
