/** Mutants of family 'pci-common-cfg': our function with one common configuration field misbehaving. */

import { VIRTIO_F_ADMIN_VQ } from '../../../../src/spec/features.js';
import {
  VIRTIO_PCI_CAP_COMMON_CFG,
  VIRTIO_PCI_CAP_CFG_TYPE,
  VIRTIO_PCI_CAP_OFFSET,
  VIRTIO_PCI_COMMON_ADM_Q_IDX,
  VIRTIO_PCI_COMMON_ADM_Q_NUM,
  VIRTIO_PCI_COMMON_DF,
  VIRTIO_PCI_COMMON_DFSELECT,
  VIRTIO_PCI_COMMON_GF,
  VIRTIO_PCI_COMMON_GFSELECT,
  VIRTIO_PCI_COMMON_Q_DESCHI,
  VIRTIO_PCI_COMMON_Q_DESCLO,
  VIRTIO_PCI_COMMON_Q_ENABLE,
  VIRTIO_PCI_COMMON_Q_RESET,
  VIRTIO_PCI_COMMON_Q_SELECT,
  VIRTIO_PCI_COMMON_Q_SIZE,
  VIRTIO_PCI_COMMON_STATUS,
} from '../../../../src/spec/virtio-pci.js';
import { MODERN_BAR, MODERN_COMMON_OFFSET } from '../../../../src/transport/pci/modern-device.js';
import type { Mutants } from './mutant.js';
import { both, mutant, onBarRead, onBarWrite, patchCapField, rng, type Mutation } from './pci-function-mutant.js';

const at = (field: number): number => MODERN_COMMON_OFFSET + field;
const ADMIN_BIT = 1 << (VIRTIO_F_ADMIN_VQ - 32);

/** Offers VIRTIO_F_ADMIN_VQ without the device core knowing: shown in window 1, taken out of the driver's window 1 writes. */
const offerAdmin: Mutation = both(
  onBarRead(MODERN_BAR, at(VIRTIO_PCI_COMMON_DF), (i, s) => {
    const v = i.barRead(MODERN_BAR, at(VIRTIO_PCI_COMMON_DF), s);
    return i.barRead(MODERN_BAR, at(VIRTIO_PCI_COMMON_DFSELECT), 4) === 1 ? (v | ADMIN_BIT) >>> 0 : v;
  }),
  onBarWrite(MODERN_BAR, at(VIRTIO_PCI_COMMON_GF), (i, s, v) =>
    i.barWrite(
      MODERN_BAR,
      at(VIRTIO_PCI_COMMON_GF),
      s,
      i.barRead(MODERN_BAR, at(VIRTIO_PCI_COMMON_GFSELECT), 4) === 1 ? v & ~ADMIN_BIT : v,
    ),
  ),
);

/** The selected queue, as the unmodified function holds it. */
const selected = (i: { barRead(b: number, o: number, s: 1 | 2 | 4): number }): number =>
  i.barRead(MODERN_BAR, at(VIRTIO_PCI_COMMON_Q_SELECT), 2);

/** queue_enable as last written per queue, never cleared by a reset. */
const stickyEnable: Mutation = (fn) => {
  const enabled = new Set<number>();
  return both(
    onBarWrite(MODERN_BAR, at(VIRTIO_PCI_COMMON_Q_ENABLE), (i, s, v) => {
      if (v === 1) enabled.add(selected(i));
      i.barWrite(MODERN_BAR, at(VIRTIO_PCI_COMMON_Q_ENABLE), s, v);
    }),
    onBarRead(MODERN_BAR, at(VIRTIO_PCI_COMMON_Q_ENABLE), (i, s) =>
      enabled.has(selected(i)) ? 1 : i.barRead(MODERN_BAR, at(VIRTIO_PCI_COMMON_Q_ENABLE), s),
    ),
  )(fn);
};

const queueReset = (read: (enable: number, real: number) => number): Mutation =>
  onBarRead(MODERN_BAR, at(VIRTIO_PCI_COMMON_Q_RESET), (i, s) =>
    read(i.barRead(MODERN_BAR, at(VIRTIO_PCI_COMMON_Q_ENABLE), 2), i.barRead(MODERN_BAR, at(VIRTIO_PCI_COMMON_Q_RESET), s)),
  );

export const pciCommonCfgMutants: Mutants = {
  'pci-common-cfg/queue-desc-halves-independent': mutant(
    "a write of queue_desc's low half clears the high half",
    rng(),
    onBarWrite(MODERN_BAR, at(VIRTIO_PCI_COMMON_Q_DESCLO), (i, s, v) => {
      i.barWrite(MODERN_BAR, at(VIRTIO_PCI_COMMON_Q_DESCLO), s, v);
      i.barWrite(MODERN_BAR, at(VIRTIO_PCI_COMMON_Q_DESCHI), 4, 0);
    }),
  ),
  'pci-common-cfg/common-cfg-present': mutant(
    'the common-cfg capability has a reserved cfg_type',
    rng(),
    patchCapField(VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_CAP_CFG_TYPE, 1, () => 0x0a),
  ),
  'pci-common-cfg/offset-aligned': mutant(
    'the common-cfg capability says offset 2',
    rng(),
    patchCapField(VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_CAP_OFFSET, 4, (old) => old + 2),
  ),
  'pci-common-cfg/device-feature-window': mutant(
    'device_feature always shows window 0',
    rng(),
    onBarRead(MODERN_BAR, at(VIRTIO_PCI_COMMON_DF), (i, s) => {
      const select = i.barRead(MODERN_BAR, at(VIRTIO_PCI_COMMON_DFSELECT), 4);
      i.barWrite(MODERN_BAR, at(VIRTIO_PCI_COMMON_DFSELECT), 4, 0);
      const v = i.barRead(MODERN_BAR, at(VIRTIO_PCI_COMMON_DF), s);
      i.barWrite(MODERN_BAR, at(VIRTIO_PCI_COMMON_DFSELECT), 4, select);
      return v;
    }),
  ),
  'pci-common-cfg/driver-feature-presented': mutant(
    'driver_feature reads 0',
    rng(),
    onBarRead(MODERN_BAR, at(VIRTIO_PCI_COMMON_GF), () => 0),
  ),
  'pci-common-cfg/reset-reads-zero': mutant(
    'a write of 0 to device_status is ignored',
    rng(),
    onBarWrite(MODERN_BAR, at(VIRTIO_PCI_COMMON_STATUS), (i, s, v) => {
      if ((v & 0xff) !== 0) i.barWrite(MODERN_BAR, at(VIRTIO_PCI_COMMON_STATUS), s, v);
    }),
  ),
  'pci-common-cfg/queue-enable-zero-on-reset': mutant('queue_enable keeps reading 1 after a reset', rng(), stickyEnable),
  'pci-common-cfg/queue-reset-zero-on-reset': mutant(
    'queue_reset reads 1 while the queue is not enabled',
    rng(),
    queueReset((enable, real) => (enable === 0 ? 1 : real)),
  ),
  'pci-common-cfg/queue-reset-zero-after-enable': mutant(
    'queue_reset reads 1 while the queue is enabled',
    rng(),
    queueReset((enable, real) => (enable === 1 ? 1 : real)),
  ),
  'pci-common-cfg/queue-reset-completes': mutant(
    'a write of 1 to queue_reset is ignored',
    rng(),
    onBarWrite(MODERN_BAR, at(VIRTIO_PCI_COMMON_Q_RESET), () => undefined),
  ),
  'pci-common-cfg/missing-queue-size-zero': mutant(
    'queue_size of a missing queue reads 256',
    rng(),
    onBarRead(MODERN_BAR, at(VIRTIO_PCI_COMMON_Q_SIZE), (i, s) => i.barRead(MODERN_BAR, at(VIRTIO_PCI_COMMON_Q_SIZE), s) || 256),
  ),
  'pci-common-cfg/queue-size-power-of-two': mutant(
    'queue 0 has size 100',
    rng(),
    onBarRead(MODERN_BAR, at(VIRTIO_PCI_COMMON_Q_SIZE), (i, s) =>
      selected(i) === 0 ? 100 : i.barRead(MODERN_BAR, at(VIRTIO_PCI_COMMON_Q_SIZE), s),
    ),
  ),
  'pci-common-cfg/admin-queue-index': mutant(
    'with VIRTIO_F_ADMIN_VQ, admin_queue_index 0 (inside the regular queues)',
    rng(),
    both(
      offerAdmin,
      onBarRead(MODERN_BAR, at(VIRTIO_PCI_COMMON_ADM_Q_IDX), () => 0),
      onBarRead(MODERN_BAR, at(VIRTIO_PCI_COMMON_ADM_Q_NUM), () => 1),
    ),
    both(
      offerAdmin,
      onBarRead(MODERN_BAR, at(VIRTIO_PCI_COMMON_ADM_Q_IDX), () => 1),
      onBarRead(MODERN_BAR, at(VIRTIO_PCI_COMMON_ADM_Q_NUM), () => 1),
    ),
  ),
  'pci-common-cfg/admin-queue-num': mutant(
    'with VIRTIO_F_ADMIN_VQ, admin_queue_num 0xffff from index 2 (past 16 bits)',
    rng(),
    both(
      offerAdmin,
      onBarRead(MODERN_BAR, at(VIRTIO_PCI_COMMON_ADM_Q_IDX), () => 2),
      onBarRead(MODERN_BAR, at(VIRTIO_PCI_COMMON_ADM_Q_NUM), () => 0xffff),
    ),
    both(
      offerAdmin,
      onBarRead(MODERN_BAR, at(VIRTIO_PCI_COMMON_ADM_Q_IDX), () => 1),
      onBarRead(MODERN_BAR, at(VIRTIO_PCI_COMMON_ADM_Q_NUM), () => 1),
    ),
  ),
};
