/**
 * Mutants of our virtio-rng device (family 'entropy'): each one rule of spec 5.4 removed, by a
 * wrapper that changes what the device reports or writes for a request.
 */

import type { Bdf } from '../../../../src/bus/pci-bus.js';
import { RngDevice } from '../../../../src/device/rng/rng-device.js';
import type { Machine } from '../../../../src/platform/machine.js';
import type { Mutant, Mutants } from './mutant.js';
import { WrappedDevice, writableBuffers, type WrapHooks } from './wrap-device.js';

function plugRng(machine: Machine, hooks?: WrapHooks): Bdf {
  const rng = new RngDevice();
  return machine.plugVirtio(hooks ? new WrappedDevice(rng, hooks) : rng, { mode: 'transitional' }).bdf;
}

function mutant(breaks: string, used: NonNullable<WrapHooks['used']>): Mutant {
  return { breaks, original: (machine) => plugRng(machine), mutant: (machine) => plugRng(machine, { used }) };
}

export const entropyMutants: Mutants = {
  'entropy/fills-at-least-one-byte': mutant('requests are used with len 0', () => 0),
  'entropy/no-write-past-buffer': mutant('a byte after the buffer is written', (chain) => {
    const last = writableBuffers(chain).at(-1);
    if (last) chain.memory.write8(last.addr + last.len, 0);
    return chain.len;
  }),
  'entropy/bytes-random': mutant('the buffer is filled with zeroes', (chain) => {
    for (const b of writableBuffers(chain)) chain.memory.view(b.addr, b.len).fill(0);
    return chain.len;
  }),
};
