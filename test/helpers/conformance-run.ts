/**
 * One statement's check run on one function, as the engine will run it: not applicable (with the
 * reason), pass, or its ConformanceViolation. Other errors propagate (a broken check, a dead device).
 */

import type { Bdf, PciBus } from '../../src/bus/pci-bus.js';
import { FunctionCheckContext } from '../../src/conformance/context.js';
import type { Interface, Statement } from '../../src/conformance/statement.js';
import { ConformanceViolation } from '../../src/errors.js';
import { PCI_DEVICE_ID, PCI_SUBSYSTEM_ID } from '../../src/spec/pci.js';
import { virtioDeviceType } from '../../src/transport/pci/probe.js';

export type Outcome = { kind: 'pass' } | { kind: 'not-applicable'; reason: string } | { kind: 'violation'; error: ConformanceViolation };

export async function runStatement(statement: Statement, bus: PciBus, fn: Bdf, via: Interface, timeoutMs = 2000): Promise<Outcome> {
  const check = statement.check!;
  const deviceId = await bus.configRead(fn, PCI_DEVICE_ID, 2);
  const subsystemId = await bus.configRead(fn, PCI_SUBSYSTEM_ID, 2);
  const transitional = deviceId >= 0x1000 && deviceId <= 0x103f;
  if (via === 'legacy' && !transitional && deviceId >= 0x1040)
    return { kind: 'not-applicable', reason: 'the function has no legacy interface' };
  const ctx = new FunctionCheckContext({
    bus,
    fn,
    deviceType: virtioDeviceType(deviceId, subsystemId)!,
    via,
    transitional,
    timeoutMs,
    statement,
  });
  try {
    const reason = await check.applies?.(ctx);
    if (reason !== undefined) return { kind: 'not-applicable', reason };
    await check.run(ctx);
    return { kind: 'pass' };
  } catch (error) {
    if (error instanceof ConformanceViolation) return { kind: 'violation', error };
    throw error;
  } finally {
    await ctx.close();
  }
}

/** An outcome in words. */
export function describeOutcome(outcome: Outcome): string {
  return outcome.kind === 'violation'
    ? `violation: ${outcome.error.message}`
    : outcome.kind === 'not-applicable'
      ? `not applicable: ${outcome.reason}`
      : 'pass';
}
