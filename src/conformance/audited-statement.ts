/**
 * The driver audit's statements in the catalogue: the device layers record findings against
 * DRIVER_REQUIREMENTS (src/spec/, which they may import), and the catalogue lists each of those as
 * a driver-side statement built here, so that ID, section, level and text are written once.
 */

import type { DriverRequirement } from '../spec/driver-requirements.js';
import type { Family, Statement } from './statement.js';

/** The catalogue's driver-side statement for an audited requirement (its ID is the audit's). */
export function auditedStatement(family: Family, requirement: DriverRequirement): Statement {
  const { id, section, level, text } = requirement;
  return { id, section, level, side: 'driver', family, text, audited: true };
}

/**
 * Why a driver-side statement is not audited when our devices do see the accesses that would show
 * it broken: no device layer records it yet (a candidate for DRIVER_REQUIREMENTS).
 */
export const NOT_AUDITED_YET =
  'not audited yet: our devices see the accesses that would show it broken, but no device layer records it (a candidate for src/spec/driver-requirements.ts)';

/** Why a driver-side statement is not audited when it needs a feature none of our devices offers. */
export function notOffered(feature: string): string {
  return `needs ${feature}, which none of our devices offers: the audit never sees a driver use it`;
}

/** Why the audit cannot see what a driver assumes or decides: its own state shows in no access. */
export const DRIVER_OWN_STATE = 'what the driver assumes or decides is its own state: no access to the device shows it';

/** Why the audit cannot see a driver failing to do something: there is no deadline to miss. */
export const NO_DEADLINE =
  'a missing access is an absence with no deadline: the driver may still make it, so the device cannot tell when the rule was broken';

/** Why the audit cannot see the byte order of a legacy driver's fields. */
export const LITTLE_ENDIAN_GUESTS =
  "our devices read legacy fields as little-endian, every guest's order they serve: another order shows only as garbage values";
