/**
 * Mutants of our virtio-console device (family 'console'): each one rule of spec 5.3 removed, by a
 * wrapper that rewrites a control message the device sends, or breaks on an early emerg_wr write.
 */

import type { Bdf } from '../../../../src/bus/pci-bus.js';
import { VirtioConsoleDevice } from '../../../../src/device/console/console-device.js';
import type { Machine } from '../../../../src/platform/machine.js';
import {
  VIRTIO_CONSOLE_CONFIG_EMERG_WR,
  VIRTIO_CONSOLE_CONTROL_RECEIVEQ,
  VIRTIO_CONSOLE_DEVICE_ADD,
  VIRTIO_CONSOLE_DEVICE_REMOVE,
} from '../../../../src/spec/console.js';
import type { Mutant, Mutants } from './mutant.js';
import { WrappedDevice, writableBuffers, type WrapHooks } from './wrap-device.js';

/** Two ports, so that the device sends two DEVICE_ADDs after DEVICE_READY. */
function plugConsole(machine: Machine, hooks?: WrapHooks): Bdf {
  const console = new VirtioConsoleDevice({ ports: [{ console: true }, { name: 'second' }] });
  return machine.plugVirtio(hooks ? new WrappedDevice(console, hooks) : console, { mode: 'transitional' }).bdf;
}

function mutant(breaks: string, hooks: WrapHooks): Mutant {
  return { breaks, original: (machine) => plugConsole(machine), mutant: (machine) => plugConsole(machine, hooks) };
}

/** The DEVICE_ADD of port 1 becomes (`id`, `event`). */
function rewriteSecondAdd(breaks: string, id: number, event: number): Mutant {
  return mutant(breaks, {
    used(chain) {
      const b = writableBuffers(chain)[0];
      if (chain.queue !== VIRTIO_CONSOLE_CONTROL_RECEIVEQ || !b || b.len < 8) return chain.len;
      const view = new DataView(chain.memory.view(b.addr, 8).slice().buffer);
      if (view.getUint32(0, true) === 1 && view.getUint16(4, true) === VIRTIO_CONSOLE_DEVICE_ADD) {
        view.setUint32(0, id, true);
        view.setUint16(4, event, true);
        chain.memory.write(b.addr, new Uint8Array(view.buffer));
      }
      return chain.len;
    },
  });
}

/** An emerg_wr write before DRIVER_OK leaves the device refusing FEATURES_OK from then on. */
function emergBreaks(): Mutant {
  return {
    breaks: 'an emerg_wr write on an unconfigured device makes it refuse initialisation',
    original: (machine) => plugConsole(machine),
    mutant(machine) {
      let broken = false;
      return plugConsole(machine, {
        writeConfig(offset, _size, _value, inner) {
          if (offset === VIRTIO_CONSOLE_CONFIG_EMERG_WR) broken = true;
          inner();
        },
        acceptFeatures: (_features, inner) => !broken && inner(),
      });
    },
  };
}

const readd = rewriteSecondAdd('port 0 is added twice', 0, VIRTIO_CONSOLE_DEVICE_ADD);

export const consoleMutants: Mutants = {
  'console/emerg-wr-unconfigured': emergBreaks(),
  'console/device-add-below-max': rewriteSecondAdd('port 31 is added (max_nr_ports 2)', 31, VIRTIO_CONSOLE_DEVICE_ADD),
  'console/device-add-new-port': readd,
  'console/device-ready-again-no-readd': readd,
  'console/device-remove-only-added': rewriteSecondAdd('port 5 is removed, never added', 5, VIRTIO_CONSOLE_DEVICE_REMOVE),
};
