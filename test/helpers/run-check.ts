/**
 * Runs one statement's check on a function of a {@link Machine} through every interface the check
 * and the function share, as the engine will: what each run gave (pass, not applicable, or the
 * error it failed with).
 */

import type { Bdf, PciBus } from '../../src/bus/pci-bus.js';
import type { Interface, Statement } from '../../src/conformance/statement.js';
import { FunctionCheckContext } from '../../src/conformance/context.js';
import { probe } from '../../src/transport/pci/probe.js';
import { VIRTIO_PCI_MODERN_DEVICE_ID_BASE } from '../../src/spec/ids.js';
import { PCI_DEVICE_ID } from '../../src/spec/pci.js';

export type Outcome =
  | { readonly via: Interface; readonly result: 'pass' }
  | { readonly via: Interface; readonly result: 'n/a'; readonly why: string }
  | { readonly via: Interface; readonly result: 'fail'; readonly error: unknown };

/** The interfaces `fn` has: modern when the probe takes it, legacy when it has a legacy header. */
export async function interfacesOf(
  bus: PciBus,
  fn: Bdf,
): Promise<{ readonly vias: Interface[]; readonly deviceType: number; readonly transitional: boolean }> {
  const modern = await probe(bus, fn).catch(() => undefined);
  const legacy = await probe(bus, fn, { forceLegacy: true }).catch(() => undefined);
  const deviceId = await bus.configRead(fn, PCI_DEVICE_ID, 2);
  const vias: Interface[] = [];
  if (modern?.kind === 'modern') vias.push('modern');
  if (legacy?.kind === 'legacy') vias.push('legacy');
  const deviceType = (modern ?? legacy)!.deviceType;
  return { vias, deviceType, transitional: vias.length === 2 && deviceId < VIRTIO_PCI_MODERN_DEVICE_ID_BASE };
}

/** Run `statement`'s check on `fn` through each interface both have. */
export async function runCheck(bus: PciBus, fn: Bdf, statement: Statement, timeoutMs = 500): Promise<Outcome[]> {
  const check = statement.check;
  if (check === undefined) throw new Error(`${statement.id} has no check`);
  const { vias, deviceType, transitional } = await interfacesOf(bus, fn);
  const outcomes: Outcome[] = [];
  for (const via of vias.filter((v) => (check.via ?? ['modern', 'legacy']).includes(v))) {
    const ctx = new FunctionCheckContext({ bus, fn, deviceType, via, transitional, timeoutMs, statement });
    try {
      const why = await check.applies?.(ctx);
      if (why !== undefined) outcomes.push({ via, result: 'n/a', why });
      else {
        await check.run(ctx);
        outcomes.push({ via, result: 'pass' });
      }
    } catch (error) {
      outcomes.push({ via, result: 'fail', error });
    } finally {
      await ctx.close();
    }
  }
  return outcomes;
}
