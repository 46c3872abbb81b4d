/** Mutants of family 'pci-msix': our function with MSI-X vectors mapped, unmapped, reset or refused wrongly. */

import type { PciFunction } from '../../../../src/pci/function.js';
import { PCI_CAP_ID_MSIX, PCI_CAPABILITY_LIST, PCI_MSIX_FLAGS } from '../../../../src/spec/pci.js';
import {
  VIRTIO_MSI_NO_VECTOR,
  VIRTIO_PCI_COMMON_MSIX,
  VIRTIO_PCI_COMMON_Q_MSIX,
  VIRTIO_PCI_COMMON_Q_SELECT,
} from '../../../../src/spec/virtio-pci.js';
import { MODERN_BAR, MODERN_COMMON_OFFSET } from '../../../../src/transport/pci/modern-device.js';
import type { Mutants } from './mutant.js';
import { mutant, plug, rng, type Mutation } from './pci-function-mutant.js';

const VECTORS = 2;
const subject = rng({ msixVectors: VECTORS });
const CONFIG = MODERN_COMMON_OFFSET + VIRTIO_PCI_COMMON_MSIX;
const QUEUE = MODERN_COMMON_OFFSET + VIRTIO_PCI_COMMON_Q_MSIX;

type Event = 'config' | 'queue';
const register = (e: Event): number => (e === 'config' ? CONFIG : QUEUE);
/** Which vector field an access is about: the config one, or the selected queue's. */
const key = (i: PciFunction, e: Event): number =>
  e === 'config' ? -1 : i.barRead(MODERN_BAR, MODERN_COMMON_OFFSET + VIRTIO_PCI_COMMON_Q_SELECT, 2);

/**
 * A vector register whose writes go through `write` (given the unmodified register's write) and
 * whose reads go through `read` (given what the unmodified register reads), with a memory of
 * writes per field that the mutant may use.
 */
function vectorRegister(
  e: Event,
  write: (value: number, store: (v: number) => void, memo: Map<number, number>, k: number) => void,
  read: (real: number, memo: Map<number, number>, k: number) => number,
): Mutation {
  return () => {
    const memo = new Map<number, number>();
    return [
      {
        barWrite(i, b, o, s, v) {
          if (b !== MODERN_BAR || o !== register(e)) return i.barWrite(b, o, s, v);
          write(v, (x) => i.barWrite(b, o, s, x), memo, key(i, e));
        },
        barRead: (i, b, o, s) => (b === MODERN_BAR && o === register(e) ? read(i.barRead(b, o, s), memo, key(i, e)) : i.barRead(b, o, s)),
      },
    ];
  };
}

const refuseVector1 = (e: Event): Mutation =>
  vectorRegister(
    e,
    (v, store) => store(v === 1 ? VIRTIO_MSI_NO_VECTOR : v),
    (real) => real,
  );
const ignoreUnmap = (e: Event): Mutation =>
  vectorRegister(
    e,
    (v, store) => (v === VIRTIO_MSI_NO_VECTOR ? undefined : store(v)),
    (real) => real,
  );
/** Remembers the last vector written and shows it even after the device dropped it (a reset). */
const keepAcrossReset = (e: Event): Mutation =>
  vectorRegister(
    e,
    (v, store, memo, k) => {
      if (v === VIRTIO_MSI_NO_VECTOR) memo.delete(k);
      else memo.set(k, v);
      store(v);
    },
    (real, memo, k) => (real === VIRTIO_MSI_NO_VECTOR ? (memo.get(k) ?? real) : real),
  );
/** Shows an out-of-table vector as if it had been mapped. */
const echoRefused = (e: Event): Mutation =>
  vectorRegister(
    e,
    (v, store, memo, k) => {
      if (v >= VECTORS && v !== VIRTIO_MSI_NO_VECTOR) memo.set(k, v);
      else memo.delete(k);
      store(v);
    },
    (real, memo, k) => memo.get(k) ?? real,
  );

/** The MSI-X capability's Table Size field claiming `size` entries (byte-wise: config space is read in words). */
const tableSize =
  (size: number): Mutation =>
  (fn) => {
    let cap = fn.configRead(PCI_CAPABILITY_LIST, 1);
    for (let n = 0; cap !== 0 && fn.configRead(cap, 1) !== PCI_CAP_ID_MSIX && n < 48; n++) cap = fn.configRead(cap + 1, 1);
    const lo = cap + PCI_MSIX_FLAGS;
    const field = size - 1;
    return [
      {
        configRead(i, o, s) {
          let v = i.configRead(o, s);
          for (let b = 0; b < s; b++) {
            const shift = 8 * b;
            if (o + b === lo) v = (v & ~(0xff << shift)) | ((field & 0xff) << shift);
            if (o + b === lo + 1) v = (v & ~(0x07 << shift)) | ((field >> 8) << shift);
          }
          return v >>> 0;
        },
      },
    ];
  };

export const pciMsixMutants: Mutants = {
  'pci-msix/table-size-range': {
    breaks: 'a single MSI-X vector',
    original: (machine) => plug(machine, subject, []),
    mutant: (machine) => plug(machine, rng({ msixVectors: 1 }), []),
  },
  'pci-msix/table-size-reported': mutant('Table Size claims 2048 vectors that BAR1 cannot hold', subject, tableSize(0x800)),
  'pci-msix/map-config-any-vector': mutant('config_msix_vector refuses vector 1', subject, refuseVector1('config')),
  'pci-msix/map-queue-any-vector': mutant('queue_msix_vector refuses vector 1', subject, refuseVector1('queue')),
  'pci-msix/unmap-config': mutant('config_msix_vector ignores NO_VECTOR', subject, ignoreUnmap('config')),
  'pci-msix/unmap-queue': mutant('queue_msix_vector ignores NO_VECTOR', subject, ignoreUnmap('queue')),
  'pci-msix/reset-unmaps-config': mutant('config_msix_vector keeps its vector across a reset', subject, keepAcrossReset('config')),
  'pci-msix/reset-unmaps-queue': mutant('queue_msix_vector keeps its vector across a reset', subject, keepAcrossReset('queue')),
  'pci-msix/refused-config-reads-no-vector': mutant(
    'config_msix_vector reads back a vector beyond the table',
    subject,
    echoRefused('config'),
  ),
  'pci-msix/refused-queue-reads-no-vector': mutant('queue_msix_vector reads back a vector beyond the table', subject, echoRefused('queue')),
  'pci-msix/no-vector-queue-silent': mutant(
    'a queue set to NO_VECTOR still interrupts on vector 0',
    subject,
    vectorRegister(
      'queue',
      (v, store, memo, k) => {
        if (v === VIRTIO_MSI_NO_VECTOR) memo.set(k, v);
        else memo.delete(k);
        store(v === VIRTIO_MSI_NO_VECTOR ? 0 : v);
      },
      (real, memo, k) => memo.get(k) ?? real,
    ),
  ),
};
