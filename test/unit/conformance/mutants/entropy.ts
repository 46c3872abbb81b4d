/**
 * Mutants of our virtio-rng device (family 'entropy'): each one rule of spec 5.4 removed, by a
 * wrapper that changes what the device reports or writes for a request.
 */

import { RngDevice } from '../../../../src/device/rng/rng-device.js';
import type { Mutant, Mutants } from './mutant.js';
import { wrappedMutant, writableBuffers, type WrapHooks } from './wrap-device.js';

function mutant(breaks: string, used: NonNullable<WrapHooks['used']>): Mutant {
  return wrappedMutant(breaks, () => new RngDevice(), { used });
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
