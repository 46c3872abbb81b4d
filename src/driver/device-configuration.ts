/**
 * Reading the device configuration space consistently (2.5.1, 4.1.4.3.1): reads repeated until
 * config_generation is the same before and after them, and 64-bit fields read as two halves within
 * one generation.
 */

import { DeviceFaultError } from '../errors.js';
import type { DriverTransport } from '../transport/pci/driver-transport.js';

/** How often config reads are retried while config_generation keeps changing. */
const CONFIG_GENERATION_RETRIES = 16;

/**
 * Run `read` until config_generation is the same before and after, at most 16 times;
 * DeviceFaultError ERR_DEVICE_CONFIG if it never settles.
 */
export async function readConfigStable<R>(transport: DriverTransport, read: () => Promise<R>): Promise<R> {
  for (let attempt = 0; attempt < CONFIG_GENERATION_RETRIES; attempt++) {
    const before = await transport.configGeneration();
    const value = await read();
    if ((await transport.configGeneration()) === before) return value;
  }
  throw new DeviceFaultError('ERR_DEVICE_CONFIG', `config_generation changed on each of ${CONFIG_GENERATION_RETRIES} reads`);
}

/** A 64-bit configuration field at `offset`, read as two 32-bit halves within one generation. */
export function readConfig64(transport: DriverTransport, offset: number): Promise<bigint> {
  return readConfigStable(transport, async () => {
    const lo = await transport.readConfig(offset, 4);
    const hi = await transport.readConfig(offset + 4, 4);
    return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
  });
}
