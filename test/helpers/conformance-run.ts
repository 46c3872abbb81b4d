/**
 * Runs catalogue checks the way the engine does (its interfaces and device type from the probe,
 * each check through each interface it names, a fresh context each time), for the tests that must
 * see each outcome: the mutant tests and the peer tests against QEMU.
 */

import { assignBars } from '../../src/bus/bars.js';
import type { Bdf, PciBus } from '../../src/bus/pci-bus.js';
import { readConfigSpace } from '../../src/bus/config-space-reader.js';
import { FunctionCheckContext } from '../../src/conformance/context.js';
import type { Interface, Statement } from '../../src/conformance/statement.js';
import { ConformanceViolation } from '../../src/errors.js';
import { decideTransport } from '../../src/transport/pci/probe.js';

export type Outcome =
  | { readonly via: Interface; readonly kind: 'pass' }
  | { readonly via: Interface; readonly kind: 'n/a'; readonly reason: string }
  | { readonly via: Interface; readonly kind: 'violation'; readonly message: string }
  | { readonly via: Interface; readonly kind: 'error'; readonly error: unknown };

export interface FunctionFacts {
  readonly deviceType: number;
  /** Modern first. */
  readonly interfaces: readonly Interface[];
}

/** The function's device type and interfaces, from the probe's two decisions. */
export async function functionFacts(bus: PciBus, fn: Bdf): Promise<FunctionFacts> {
  const bars = await assignBars(bus, fn);
  const cfg = await readConfigSpace(bus, fn);
  const first = decideTransport(cfg, bars);
  const interfaces: Interface[] = [first.kind];
  try {
    if (first.kind === 'modern') interfaces.push(decideTransport(cfg, bars, { forceLegacy: true }).kind);
  } catch {
    // Modern only.
  }
  return { deviceType: first.deviceType, interfaces };
}

/** Runs `statement`'s check through each interface it names that the function has; `session` gives the bus and function for each run. */
export async function runCheck(
  statement: Statement,
  facts: FunctionFacts,
  session: () => { readonly bus: PciBus; readonly fn: Bdf },
  timeoutMs: number,
): Promise<Outcome[]> {
  const check = statement.check!;
  const outcomes: Outcome[] = [];
  for (const via of check.via ?? [facts.interfaces[0]!]) {
    if (!facts.interfaces.includes(via)) continue;
    const { bus, fn } = session();
    const ctx = new FunctionCheckContext({
      bus,
      fn,
      deviceType: facts.deviceType,
      via,
      transitional: facts.interfaces.length === 2,
      timeoutMs,
      statement,
    });
    try {
      const reason = await check.applies?.(ctx);
      if (reason !== undefined) outcomes.push({ via, kind: 'n/a', reason });
      else {
        await check.run(ctx);
        outcomes.push({ via, kind: 'pass' });
      }
    } catch (error) {
      if (error instanceof ConformanceViolation && error.statement === statement.id)
        outcomes.push({ via, kind: 'violation', message: error.message });
      else outcomes.push({ via, kind: 'error', error });
    } finally {
      await ctx.close();
    }
  }
  return outcomes;
}

/** An outcome in words, for diagnostics and assertion messages. */
export function describeOutcome(outcome: Outcome): string {
  switch (outcome.kind) {
    case 'pass':
      return `${outcome.via}: pass`;
    case 'n/a':
      return `${outcome.via}: not applicable: ${outcome.reason}`;
    case 'violation':
      return `${outcome.via}: violation: ${outcome.message}`;
    case 'error':
      return `${outcome.via}: error: ${outcome.error instanceof Error ? outcome.error.message : String(outcome.error)}`;
  }
}
