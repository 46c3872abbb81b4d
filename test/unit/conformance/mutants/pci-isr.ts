/** Mutants of family 'pci-isr': our function's ISR, PCI status interrupt bit or INTx pin misbehaving. */

import { PCI_COMMAND, PCI_COMMAND_INTX_DISABLE, PCI_STATUS, PCI_STATUS_INTERRUPT } from '../../../../src/spec/pci.js';
import { VIRTIO_PCI_CAP_CFG_TYPE, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_QUEUE } from '../../../../src/spec/virtio-pci.js';
import { MODERN_BAR, MODERN_ISR_OFFSET } from '../../../../src/transport/pci/modern-device.js';
import type { Mutants } from './mutant.js';
import { mutant, onBarRead, patchCapField, rng, type Mutation } from './pci-function-mutant.js';

/** The PCI status register's interrupt bit forced to `on` (reads only). */
const statusBit =
  (on: boolean): Mutation =>
  () => [
    {
      configRead(i, o, s) {
        const v = i.configRead(o, s);
        if (o > PCI_STATUS || o + s <= PCI_STATUS) return v;
        const bit = PCI_STATUS_INTERRUPT << (8 * (PCI_STATUS - o));
        return (on ? v | bit : v & ~bit) >>> 0;
      },
    },
  ];

export const pciIsrMutants: Mutants = {
  'pci-isr/isr-cfg-present': mutant(
    'the ISR capability has a reserved cfg_type',
    rng(),
    patchCapField(VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_CAP_CFG_TYPE, 1, () => 0x0a),
  ),
  'pci-isr/queue-bit-before-notification': mutant(
    'the ISR never shows the queue bit',
    rng(),
    onBarRead(MODERN_BAR, MODERN_ISR_OFFSET, (i, s) => i.barRead(MODERN_BAR, MODERN_ISR_OFFSET, s) & ~VIRTIO_PCI_ISR_QUEUE),
  ),
  'pci-isr/read-clears': mutant('the ISR keeps every bit it ever showed', rng(), (fn) => {
    let sticky = 0;
    return onBarRead(MODERN_BAR, MODERN_ISR_OFFSET, (i, s) => (sticky |= i.barRead(MODERN_BAR, MODERN_ISR_OFFSET, s)))(fn);
  }),
  'pci-isr/pci-status-interrupt-set': mutant('the PCI status interrupt bit always reads 0', rng(), statusBit(false)),
  'pci-isr/pci-status-interrupt-clear': mutant('the PCI status interrupt bit always reads 1', rng(), statusBit(true)),
  'pci-isr/pci-status-interrupt-set-masked': mutant('the PCI status interrupt bit always reads 0', rng(), statusBit(false)),
  'pci-isr/pci-status-after-msix-disabled': mutant(
    'the PCI status interrupt bit always reads 0',
    rng({ msixVectors: 2 }),
    statusBit(false),
  ),
  'pci-isr/intx-asserted': mutant('the INTx pin is never raised', rng(), () => [
    { setIntx: (host, level) => (level ? undefined : host.setIntx(false)) },
  ]),
  'pci-isr/intx-deasserted-on-read': mutant('the INTx pin is never lowered', rng(), () => [
    { setIntx: (host, level) => (level ? host.setIntx(true) : undefined) },
  ]),
  'pci-isr/intx-masked-by-command': mutant(
    'Interrupt Disable in the command register is not honoured (shown but not applied)',
    rng(),
    () => {
      let disable = 0;
      return [
        {
          configWrite(i, o, s, v) {
            if (o === PCI_COMMAND && s >= 2) {
              disable = v & PCI_COMMAND_INTX_DISABLE;
              i.configWrite(o, s, v & ~PCI_COMMAND_INTX_DISABLE);
            } else i.configWrite(o, s, v);
          },
          configRead: (i, o, s) => (o === PCI_COMMAND && s >= 2 ? i.configRead(o, s) | disable : i.configRead(o, s)),
        },
      ];
    },
  ),
};
