/**
 * The driver audit's view of the register accesses (core/driver-audit.ts): a BAR region wrapped so
 * that findings recorded while an access is served name that access, and, on the modern BAR, the
 * device-configuration generation loop (2.5.1) watched over the sequence of accesses. Only a
 * function made with an audit has these wrappers.
 */

import type { AccessSize } from '../../memory/access-size.js';
import type { BarRegion } from '../../pci/bar-region.js';
import type { DriverAudit, RegisterLabel } from '../../core/driver-audit.js';
import { DRIVER_REQUIREMENTS as R } from '../../spec/driver-requirements.js';
import { VIRTIO_PCI_COMMON_CFGGENERATION } from '../../spec/virtio-pci.js';
import { MODERN_BLOCK_SIZE, MODERN_COMMON_OFFSET, MODERN_DEVICE_OFFSET, MODERN_ISR_OFFSET, MODERN_NOTIFY_OFFSET } from './modern-device.js';

/** `region` of BAR `bar`, with every access announced to `audit` while it is served. */
export function auditedRegion(region: BarRegion, audit: DriverAudit, bar: number, label: RegisterLabel, watch?: AccessWatch): BarRegion {
  return {
    read: (offset, size) => {
      audit.enter(bar, false, offset, size, 0, label);
      try {
        watch?.observe(false, offset, size);
        return region.read(offset, size);
      } finally {
        audit.leave();
      }
    },
    write: (offset, size, value) => {
      audit.enter(bar, true, offset, size, value, label);
      try {
        watch?.observe(true, offset, size);
        region.write(offset, size, value);
      } finally {
        audit.leave();
      }
    },
  };
}

/** Something that watches the order of a region's accesses. */
export interface AccessWatch {
  observe(write: boolean, offset: number, size: AccessSize): void;
}

const MODERN_BLOCKS: readonly [number, string][] = [
  [MODERN_COMMON_OFFSET, 'common_cfg'],
  [MODERN_ISR_OFFSET, 'isr'],
  [MODERN_DEVICE_OFFSET, 'device_cfg'],
  [MODERN_NOTIFY_OFFSET, 'notify'],
];

/** "device_cfg+0x4" for an offset of the modern BAR. */
export function modernRegisterLabel(offset: number): string {
  const block = MODERN_BLOCKS.find(([base]) => offset >= base && offset < base + MODERN_BLOCK_SIZE);
  return block === undefined ? 'unmapped' : `${block[1]}+0x${(offset - block[0]).toString(16)}`;
}

/** "legacy header+0x12" for an offset of BAR0. */
export function legacyRegisterLabel(offset: number): string {
  return `legacy header+0x${offset.toString(16)}`;
}

/**
 * 2.5.1: reads of device configuration that make up more than one access (several fields, or the
 * parts of a wide one) sit between two reads of config_generation that the driver compares. Seen
 * from the device: a run of consecutive device-configuration reads longer than one access must be
 * preceded and followed at once by a config_generation read. A single read alone is atomic and
 * needs no loop. Runs end at the next access of another kind.
 */
export class GenerationLoopWatch implements AccessWatch {
  private runReads = 0;
  /** The first reads of the run, "offset/size", for the finding (at most {@link GenerationLoopWatch.SHOWN}). */
  private readonly shown: string[] = [];
  private generationBefore = false;
  private lastWasGeneration = false;
  /** The access before the run, for the finding. */
  private previous = 'none';
  private before = 'none';
  private static readonly SHOWN = 8;

  constructor(private readonly audit: DriverAudit) {}

  observe(write: boolean, offset: number, size: AccessSize): void {
    const isConfigRead = !write && offset >= MODERN_DEVICE_OFFSET && offset < MODERN_DEVICE_OFFSET + MODERN_BLOCK_SIZE;
    const isGeneration = !write && offset === MODERN_COMMON_OFFSET + VIRTIO_PCI_COMMON_CFGGENERATION;
    if (isConfigRead) {
      if (this.runReads === 0) {
        this.generationBefore = this.lastWasGeneration;
        this.before = this.previous;
        this.shown.length = 0;
      }
      this.runReads++;
      if (this.shown.length < GenerationLoopWatch.SHOWN) this.shown.push(`${offset - MODERN_DEVICE_OFFSET}/${size}`);
    } else if (this.runReads > 0) {
      if (this.runReads > 1 && !(this.generationBefore && isGeneration)) {
        const missing = this.generationBefore ? 'after' : isGeneration ? 'before' : 'before or after';
        const reads = `${this.shown.join(' ')}${this.runReads > this.shown.length ? ' ...' : ''}`;
        this.audit.record(
          R.configGenerationLoop,
          `${this.runReads} device configuration reads in a row (offset/size ${reads}) with no config_generation read ${missing} them (before them: ${this.before})`,
        );
      }
      this.runReads = 0;
    }
    this.lastWasGeneration = isGeneration;
    if (!isConfigRead) this.previous = `${write ? 'write' : 'read'}${size * 8} at ${modernRegisterLabel(offset)}`;
  }
}
