/**
 * UDP ports that QEMU binds itself (`-netdev socket,udp=...,localaddr=HOST:PORT`, `-netdev dgram`):
 * QEMU takes no port 0 there, so a port is picked free and handed to it, and another process may take
 * it between the pick and QEMU's bind. A start that fails for that reason is retried with new ports.
 */

import { createSocket } from 'node:dgram';
import { BusError } from '../../errors.js';

/** How many starts a port clash may cost before it is reported. */
const ATTEMPTS = 5;

/** A UDP port on 127.0.0.1 that is free right now (for an end that QEMU binds). */
export async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** True for QEMU failing to start because a port it was told to bind was taken meanwhile. */
function isPortClash(err: unknown): boolean {
  return err instanceof BusError && err.message.includes('Address already in use');
}

/**
 * Runs `start` with a picker of free UDP ports; when QEMU then fails to start because a port was
 * taken before it bound it, runs `start` again with new picks (at most ATTEMPTS starts). A clash
 * when `start` picked no port is over a port the caller chose, and is reported at once.
 */
export async function withFreeUdpPorts<T>(start: (pickPort: () => Promise<number>) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    let picked = 0;
    try {
      return await start(() => {
        picked++;
        return freeUdpPort();
      });
    } catch (err) {
      if (picked === 0 || !isPortClash(err) || attempt === ATTEMPTS) throw err;
    }
  }
}
