/**
 * A PCI endpoint: a {@link ConfigSpace}, the register blocks behind its BARs and its INTx pin,
 * assembled into the {@link PciFunction} an emulator calls. Transport front-ends (modern, legacy,
 * MSI-X) plug blocks into BARs and capabilities into config space; this class routes accesses.
 */

import type { BarDescriptor, DecodedBar, DeviceHost, PciFunction } from './function.js';
import type { AccessSize } from '../memory/access-size.js';
import type { BarRegion } from './bar-region.js';
import type { ConfigSpace } from './config-space.js';

export class PciEndpoint implements PciFunction {
  private readonly regions: (BarRegion | undefined)[] = [];
  /** Level last driven on the pin, so the host hears only changes. */
  private pinLevel = false;

  constructor(
    readonly config: ConfigSpace,
    private readonly host: DeviceHost,
  ) {}

  get bars(): readonly (BarDescriptor | undefined)[] {
    return this.config.bars;
  }

  /** Serve BAR `index` (declared in the config space) with `region`. */
  setBarRegion(index: number, region: BarRegion): void {
    this.regions[index] = region;
  }

  configRead(offset: number, size: AccessSize): number {
    return this.config.read(offset, size);
  }

  configWrite(offset: number, size: AccessSize, value: number): void {
    this.config.write(offset, size, value);
    // INTX_DISABLE may have changed what the pin shows.
    this.drivePin();
  }

  decodedBars(): DecodedBar[] {
    return this.config.decodedBars();
  }

  barRead(bar: number, offset: number, size: AccessSize): number {
    return this.config.barEnabled(bar) ? this.barReadDirect(bar, offset, size) : 0;
  }

  barWrite(bar: number, offset: number, size: AccessSize, value: number): void {
    if (this.config.barEnabled(bar)) this.barWriteDirect(bar, offset, size, value);
  }

  /**
   * BAR access regardless of the command register, for paths that reach BARs through config space
   * (the virtio PCI_CFG window, 4.1.4.9). Out-of-range accesses read 0 and write nothing.
   */
  barReadDirect(bar: number, offset: number, size: AccessSize): number {
    const region = this.inRange(bar, offset, size);
    return region === undefined ? 0 : region.read(offset, size);
  }

  barWriteDirect(bar: number, offset: number, size: AccessSize, value: number): void {
    this.inRange(bar, offset, size)?.write(offset, size, value >>> 0);
  }

  /** Set the function's internal INTx state (status INTERRUPT bit; the pin unless INTX_DISABLE). */
  setIntx(level: boolean): void {
    this.config.interruptStatus = level;
    this.drivePin();
  }

  /** Drive the pin to what config space says (after a restore: the host hears only a change). */
  protected drivePin(): void {
    const level = this.config.intxAsserted;
    if (level === this.pinLevel) return;
    this.pinLevel = level;
    this.host.setIntx(level);
  }

  private inRange(bar: number, offset: number, size: number): BarRegion | undefined {
    const desc = this.config.bars[bar];
    const ok =
      desc !== undefined &&
      (size === 1 || size === 2 || size === 4) &&
      Number.isInteger(offset) &&
      offset >= 0 &&
      offset + size <= desc.size;
    return ok ? this.regions[bar] : undefined;
  }
}
