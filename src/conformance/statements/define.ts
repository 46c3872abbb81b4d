/** Statement constructors for a family's files: the ID, side and family filled in from the slug. */

import type { Check, Family, Level, Statement } from '../statement.js';

/** What a device-side statement has besides its text: a check, or why there is none. */
export type DeviceEvidence = { readonly check: Check } | { readonly uncheckable: string };

/** A constructor of `family`'s device-side statements (ID `<family>/<slug>`). */
export function deviceStatements(
  family: Family,
): (slug: string, section: string, level: Level, text: string, rest: DeviceEvidence) => Statement {
  return (slug, section, level, text, rest) => ({ id: `${family}/${slug}`, section, level, side: 'device', family, text, ...rest });
}

/** A constructor of `family`'s driver-side statements (ID `<family>/driver-<slug>`), for the audit. */
export function driverStatements(family: Family): (slug: string, section: string, level: Level, text: string) => Statement {
  return (slug, section, level, text) => ({ id: `${family}/driver-${slug}`, section, level, side: 'driver', family, text });
}
