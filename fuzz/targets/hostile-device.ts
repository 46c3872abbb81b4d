/**
 * Target (d): the driver half against a hostile device. A real in-process device sits behind a
 * {@link HostileBus} whose every register read, dropped write and used-ring entry (id, len,
 * used.idx) the input may choose; each device driver (rng, blk, net, console) opens it, does some
 * I/O and closes.
 *
 * Guarantees checked: every driver call ends in success or one of our typed errors (never another
 * exception, never an unhandled rejection); every call settles (waits have timeouts; a run that has
 * not settled after HANG_MS is a hang); returned data has exactly the size asked for; with no
 * tampering at all everything succeeds; close() leaves no timers behind.
 */

import { BlkDriver } from '../../src/driver/blk/blk-driver.js';
import { VirtioConsoleDriver } from '../../src/driver/console/console-driver.js';
import { VirtioNetDriver } from '../../src/driver/net/net-driver.js';
import { RngDriver } from '../../src/driver/rng/rng-driver.js';
import { VirtioError } from '../../src/errors.js';
import { Machine } from '../../src/platform/machine.js';
import type { VirtioPciMode } from '../../src/transport/pci/virtio-pci-function.js';
import { GuaranteeViolation, check, describe, expectTypedAsync } from '../engine/guarantees.js';
import { FuzzInput, InputWriter } from '../engine/input.js';
import type { MutationShape } from '../engine/mutator.js';
import type { Seed } from '../engine/target.js';
import { makeZooDevice, type ZooKind } from '../harness/device-zoo.js';
import { HostileBus, OPERATION_BUDGET } from '../harness/hostile-bus.js';

export const description = 'driver half (rng, blk, net, console) against a device whose register reads and used entries the input picks';

const KINDS: readonly ZooKind[] = ['rng', 'blk', 'net', 'console-multiport', 'console'];
/** The first input byte picks the device (byte % 5) and, from byte / 5, the mode and MSI-X vectors. */
const MODES: readonly VirtioPciMode[] = ['modern', 'transitional', 'legacy'];
const MSIX_VECTORS = [0, 4] as const;
/** Every driver wait, in ms: short, so a device that never answers costs little. */
const TIMEOUT_MS = 3;
/** A run not settled by then never would: a hang. */
const HANG_MS = 1000;

export const shape: MutationShape = { maxLength: 2048 };

const unhandled: unknown[] = [];
let listening = false;

export async function run(data: Uint8Array): Promise<void> {
  if (!listening) {
    // A rejection nobody handles is an exception escaping the driver.
    process.on('unhandledRejection', (reason) => void unhandled.push(reason));
    listening = true;
  }
  unhandled.length = 0;
  const input = new FuzzInput(data);
  const pick = input.u8();
  const kind = KINDS[pick % KINDS.length]!;
  const variant = Math.floor(pick / KINDS.length);
  const zoo = makeZooDevice(kind);
  const machine = new Machine({ ramSize: 1 << 18 });
  // The device in each transport mode, with or without MSI-X: the driver probes and commits to one.
  const { bdf } = machine.plugVirtio(zoo.device, { mode: MODES[variant % MODES.length]!, msixVectors: MSIX_VECTORS[Math.floor(variant / MODES.length) % MSIX_VECTORS.length]! });
  const bus = new HostileBus(machine.bus, machine.memory, input);
  const options = { timeoutMs: TIMEOUT_MS };
  const timersBefore = countTimers();

  const workload = async (): Promise<void> => {
    switch (kind) {
      case 'rng': {
        const drv = await RngDriver.open(bus, bdf, options);
        try {
          for (const n of [32, 100]) {
            const bytes = await drv.read(n);
            check(bytes.length === n, 'contract', () => `rng read(${n}) returned ${bytes.length} bytes`);
          }
        } finally {
          await drv.close();
        }
        break;
      }
      case 'blk': {
        const drv = await BlkDriver.open(bus, bdf, options);
        try {
          const sectors = await drv.read(0, 2);
          check(sectors.length === 1024, 'contract', () => `blk read of 2 sectors returned ${sectors.length} bytes`);
          await drv.write(1, new Uint8Array(512).fill(0x5a));
          await drv.flush();
        } finally {
          await drv.close();
        }
        break;
      }
      case 'net': {
        const drv = await VirtioNetDriver.open(bus, bdf, options);
        try {
          await drv.send(new Uint8Array(60).fill(0x11));
          zoo.hostInput(0, Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, 0x56, 2, 0, 0, 0, 0, 1, 8, 0, ...new Array(46).fill(7)));
          const frame = await drv.receive(TIMEOUT_MS);
          check(frame.length <= 65_535 + 18, 'contract', () => `received a ${frame.length}-byte frame`);
        } finally {
          await drv.close();
        }
        break;
      }
      default: {
        const drv = await VirtioConsoleDriver.open(bus, bdf, options);
        try {
          const port = await drv.waitPort(0, TIMEOUT_MS);
          await port.write(Uint8Array.of(0x68, 0x69, 0x0a));
          zoo.hostInput(0, Uint8Array.of(0x6f, 0x6b));
          const got = await port.read(16, TIMEOUT_MS);
          check(got.length <= 16, 'contract', () => `console read(16) returned ${got.length} bytes`);
        } finally {
          await drv.close();
        }
      }
    }
  };

  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new GuaranteeViolation('hang', `the ${kind} driver did not settle within ${HANG_MS} ms`)), HANG_MS);
  });
  let outcome: unknown;
  try {
    outcome = await Promise.race([expectTypedAsync(`${kind} driver`, [VirtioError], workload), hang]);
  } catch (err) {
    // Name the driver in every finding (fuzz/known-open.ts matches on it).
    if (err instanceof GuaranteeViolation && !err.message.includes(`${kind} driver`)) throw new GuaranteeViolation(err.kind, `${kind} driver: ${err.message.replace(/^[a-z-]+: /, '')}`, { cause: err });
    throw err;
  } finally {
    clearTimeout(timer);
    // Like a peer that went away: background loops still running see BusError from now on.
    await bus.close();
  }
  // Let stray rejections and timers surface before judging.
  for (let i = 0; i < 2; i++) await new Promise<void>((resolve) => setImmediate(resolve));
  if (bus.exhausted) throw new GuaranteeViolation('hang', `the ${kind} driver made more than ${OPERATION_BUDGET} bus operations (a loop that never ends)`);
  if (unhandled.length > 0) throw new GuaranteeViolation('escaped-exception', `unhandled rejection in the ${kind} driver: ${describe(unhandled[0])}`);
  if (bus.tampered === 0) check(!(outcome instanceof VirtioError) || outcome.code === 'ERR_DEVICE_TIMEOUT', 'contract', () => `an honest ${kind} device failed: ${describe(outcome)}`);
  const lingering = countTimers() - timersBefore;
  check(lingering <= 0, 'memory-growth', () => `${lingering} timers still pending after the ${kind} driver closed`);
}

function countTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

export function seeds(): Seed[] {
  const s: Seed[] = KINDS.flatMap((kind, k) => [
    { name: `honest-${kind}`, data: Uint8Array.of(k) },
    { name: `honest-${kind}-transitional-msix`, data: Uint8Array.of(k + KINDS.length * 4) },
    { name: `honest-${kind}-legacy`, data: Uint8Array.of(k + KINDS.length * 2) },
  ]);
  // Tamper streams: a byte >= 0xe0 replaces a read with the next u32; >= 0xd0 at a refresh rewrites used entries.
  const tamperAll = (k: number, d: number, value: number): Uint8Array => {
    const w = new InputWriter().u8(k);
    for (let i = 0; i < 200; i++) w.u8(d).u32(value);
    return w.finish();
  };
  KINDS.forEach((kind, k) => {
    s.push({ name: `${kind}-all-reads-ones`, data: tamperAll(k, 0xd0, 0) });
    s.push({ name: `${kind}-all-reads-random`, data: tamperAll(k, 0xff, 0x12345678) });
  });
  // Honest probe, then used entries naming an id never submitted / a len beyond the buffer.
  const late = (k: number, skip: number, id: number, len: number): Uint8Array => {
    const w = new InputWriter().u8(k);
    for (let i = 0; i < skip; i++) w.u8(0);
    for (let i = 0; i < 32; i++) w.u8(0xd0).u32(id).u32(len);
    return w.finish();
  };
  KINDS.forEach((kind, k) => {
    s.push({ name: `${kind}-used-id-never-submitted`, data: late(k, 150, 0x7fff, 1) });
    s.push({ name: `${kind}-used-len-beyond-buffer`, data: late(k, 150, 0, 0xffffffff) });
  });
  return s;
}
