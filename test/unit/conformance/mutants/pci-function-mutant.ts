/**
 * Mutants of our virtio PCI function for the PCI transport's families: the unmodified
 * VirtioPciFunction behind a wrapper whose hooks change what one kind of register access does
 * (configuration space bytes, a BAR register, the INTx pin), so that exactly one rule is broken.
 */

import type { Bdf } from '../../../../src/bus/pci-bus.js';
import type { VirtioDevice } from '../../../../src/core/virtio-device.js';
import { BlkDevice } from '../../../../src/device/blk/blk-device.js';
import { MemoryBlockBackend } from '../../../../src/device/blk/memory-backend.js';
import { RngDevice } from '../../../../src/device/rng/rng-device.js';
import type { AccessSize } from '../../../../src/memory/access-size.js';
import type { BarDescriptor, DecodedBar, DeviceHost, PciFunction } from '../../../../src/pci/function.js';
import type { Machine } from '../../../../src/platform/machine.js';
import { PCI_CAP_ID_VNDR, PCI_CAPABILITY_LIST, PCI_MSIX_CAP_SIZE } from '../../../../src/spec/pci.js';
import { VIRTIO_PCI_CAP_CFG_TYPE, VIRTIO_PCI_CAP_LEN } from '../../../../src/spec/virtio-pci.js';
import { VirtioPciFunction, type VirtioPciFunctionOptions } from '../../../../src/transport/pci/virtio-pci-function.js';
import type { Mutant } from './mutant.js';

/** What a mutant changes; each hook gets the function below it (unmodified, or under earlier hooks) to delegate to. */
export interface Hooks {
  configRead?(inner: PciFunction, offset: number, size: AccessSize): number;
  configWrite?(inner: PciFunction, offset: number, size: AccessSize, value: number): void;
  barRead?(inner: PciFunction, bar: number, offset: number, size: AccessSize): number;
  barWrite?(inner: PciFunction, bar: number, offset: number, size: AccessSize, value: number): void;
  /** Replaces the host's INTx line. */
  setIntx?(host: DeviceHost, level: boolean): void;
}

/** Builds a mutant's hooks once the unmodified function exists (hooks may need its layout or MSI-X state). */
export type Mutation = (fn: VirtioPciFunction) => readonly Hooks[];

class MutantFunction implements PciFunction {
  constructor(
    private readonly inner: PciFunction,
    private readonly hooks: Hooks,
  ) {}
  get bars(): readonly (BarDescriptor | undefined)[] {
    return this.inner.bars;
  }
  decodedBars(): DecodedBar[] {
    return this.inner.decodedBars();
  }
  configRead(offset: number, size: AccessSize): number {
    return this.hooks.configRead?.(this.inner, offset, size) ?? this.inner.configRead(offset, size);
  }
  configWrite(offset: number, size: AccessSize, value: number): void {
    if (this.hooks.configWrite) this.hooks.configWrite(this.inner, offset, size, value);
    else this.inner.configWrite(offset, size, value);
  }
  barRead(bar: number, offset: number, size: AccessSize): number {
    return this.hooks.barRead?.(this.inner, bar, offset, size) ?? this.inner.barRead(bar, offset, size);
  }
  barWrite(bar: number, offset: number, size: AccessSize, value: number): void {
    if (this.hooks.barWrite) this.hooks.barWrite(this.inner, bar, offset, size, value);
    else this.inner.barWrite(bar, offset, size, value);
  }
}

/** Which of our devices a mutant is made of, and how it is plugged. */
export interface Subject {
  readonly device: () => VirtioDevice;
  readonly options?: VirtioPciFunctionOptions;
}

export const rng = (options: VirtioPciFunctionOptions = {}): Subject => ({ device: () => new RngDevice(), options });
export const blk = (options: VirtioPciFunctionOptions = {}, numQueues = 1): Subject => ({
  device: () => new BlkDevice({ backend: new MemoryBlockBackend(new Uint8Array(64 * 1024).map((_, i) => i & 0xff)), numQueues }),
  options,
});

export function plug(machine: Machine, subject: Subject, mutations: readonly Mutation[]): Bdf {
  return machine.plug((host) => {
    let sets: readonly Hooks[] = [];
    const intx = (level: boolean): void => {
      const hook = [...sets].reverse().find((h) => h.setIntx !== undefined);
      if (hook?.setIntx) hook.setIntx(host, level);
      else host.setIntx(level);
    };
    const fn = new VirtioPciFunction(subject.device(), { ...host, setIntx: intx }, subject.options);
    sets = mutations.flatMap((m) => m(fn));
    return sets.reduce<PciFunction>((below, hooks) => new MutantFunction(below, hooks), fn);
  }).bdf;
}

/**
 * A mutant: `subject` under `base` (none: as is), and under `base` then `mutation`. A base makes
 * the check apply to the original too (e.g. a device that hides a feature).
 */
export function mutant(breaks: string, subject: Subject, mutation: Mutation, base?: Mutation): Mutant {
  const under = base === undefined ? [] : [base];
  return {
    breaks,
    original: (machine) => plug(machine, subject, under),
    mutant: (machine) => plug(machine, subject, [...under, mutation]),
  };
}

/** Several mutations as one, applied in order. */
export function both(...mutations: Mutation[]): Mutation {
  return (fn) => mutations.flatMap((m) => m(fn));
}

// Configuration space.

/** Where the first virtio capability of `cfgType` sits in `fn`'s configuration space. */
export function capOffset(fn: PciFunction, cfgType: number): number {
  for (let at = fn.configRead(PCI_CAPABILITY_LIST, 1), n = 0; at !== 0 && n < 48; at = fn.configRead(at + 1, 1), n++)
    if (fn.configRead(at, 1) === PCI_CAP_ID_VNDR && fn.configRead(at + VIRTIO_PCI_CAP_CFG_TYPE, 1) === cfgType) return at;
  throw new Error(`no virtio capability of type ${cfgType}`);
}

/** Bytes of configuration space replaced on reads (offset -> byte); writes go through. */
export function patchBytes(patches: (fn: VirtioPciFunction) => ReadonlyMap<number, number>): Mutation {
  return (fn) => {
    const map = patches(fn);
    return [
      {
        configRead(i, offset, size) {
          let v = i.configRead(offset, size);
          for (let b = 0; b < size; b++) {
            const p = map.get(offset + b);
            if (p !== undefined) v = (v & ~(0xff << (8 * b))) | (p << (8 * b));
          }
          return v >>> 0;
        },
      },
    ];
  };
}

/** `value` as `width` little-endian bytes at `offset`. */
export function bytesAt(offset: number, width: number, value: number): [number, number][] {
  return Array.from({ length: width }, (_, b) => [offset + b, (value >>> (8 * b)) & 0xff] as [number, number]);
}

/** A patch of `width` bytes at `field` of the first capability of `cfgType`. */
export function patchCapField(cfgType: number, field: number, width: number, value: (old: number) => number): Mutation {
  return patchBytes((inner) => {
    const at = capOffset(inner, cfgType) + field;
    return new Map(bytesAt(at, width, value(inner.configRead(at, width as AccessSize))));
  });
}

/**
 * Capabilities appended to the list, in the free space after the last one (each `bytes` without
 * the two list bytes, which are filled in); `dynamic` may change a byte on every read.
 */
export function appendCaps(
  caps: readonly (readonly number[])[],
  dynamic?: (offset: number, reads: number, placed: readonly number[]) => number | undefined,
): Mutation {
  return (inner) => {
    const list: number[] = [];
    let end = 0;
    for (let at = inner.configRead(PCI_CAPABILITY_LIST, 1), n = 0; at !== 0 && n < 48; at = inner.configRead(at + 1, 1), n++) {
      list.push(at);
      const len = inner.configRead(at, 1) === PCI_CAP_ID_VNDR ? inner.configRead(at + VIRTIO_PCI_CAP_LEN, 1) : PCI_MSIX_CAP_SIZE;
      end = Math.max(end, at + len);
    }
    const map = new Map<number, number>();
    let at = Math.ceil(end / 4) * 4;
    map.set(list.at(-1)! + 1, at);
    const placed: number[] = [];
    caps.forEach((bytes, i) => {
      placed.push(at);
      const next = i + 1 < caps.length ? Math.ceil((at + bytes.length + 2) / 4) * 4 : 0;
      if (at + bytes.length + 2 > 256) throw new Error('no room for the capabilities');
      [PCI_CAP_ID_VNDR, next, ...bytes].forEach((b, j) => map.set(at + j, b));
      at = next;
    });
    let reads = 0;
    return [
      {
        configRead(i, offset, size) {
          let v = i.configRead(offset, size);
          for (let b = 0; b < size; b++) {
            const p = dynamic?.(offset + b, reads, placed) ?? map.get(offset + b);
            if (p !== undefined) v = (v & ~(0xff << (8 * b))) | (p << (8 * b));
          }
          reads++;
          return v >>> 0;
        },
      },
    ];
  };
}

// BAR registers.

/** Reads of `[offset, +size)` in `bar` replaced (exact register match). */
export function onBarRead(bar: number, offset: number, read: (inner: PciFunction, size: AccessSize) => number): Mutation {
  return () => [{ barRead: (i, b, o, s) => (b === bar && o === offset ? read(i, s) : i.barRead(b, o, s)) }];
}

/** Writes of the register at `offset` in `bar` replaced. */
export function onBarWrite(bar: number, offset: number, write: (inner: PciFunction, size: AccessSize, value: number) => void): Mutation {
  return () => [{ barWrite: (i, b, o, s, v) => (b === bar && o === offset ? write(i, s, v) : i.barWrite(b, o, s, v)) }];
}
