/**
 * The end of a device driver's loop (receiving, control messages) on a fault: the loop's queue is
 * then broken, as Linux marks one virtqueue broken, not the device.
 */

import { BusError, VirtioError } from '../errors.js';

/**
 * Why a device driver's loop (receiving, control messages) stopped, as a VirtioError: `error`
 * itself, or a BusError naming `where` with `error` as its cause. Calls that wait on the broken queue
 * reject with this.
 */
export function loopFault(error: unknown, where: string): VirtioError {
  return error instanceof VirtioError
    ? error
    : new BusError(`${where}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}
