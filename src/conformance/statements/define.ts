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

/**
 * A constructor of `family`'s device-side statements whose checks share `base` (interfaces and
 * when they apply) and differ only in what they run.
 */
export function checkedStatements(
  family: Family,
  base: Omit<Check, 'run'>,
): (slug: string, section: string, level: Level, text: string, run: Check['run']) => Statement {
  const statement = deviceStatements(family);
  return (slug, section, level, text, run) => statement(slug, section, level, text, { check: { ...base, run } });
}

/**
 * A constructor of `family`'s driver-side statements the audit does not record (ID
 * `<family>/driver-<slug>`), with why it cannot see them; the audited ones come from
 * DRIVER_REQUIREMENTS through auditedStatement.
 */
export function driverStatements(
  family: Family,
): (slug: string, section: string, level: Level, text: string, uncheckable: string) => Statement {
  return (slug, section, level, text, uncheckable) => ({
    id: `${family}/driver-${slug}`,
    section,
    level,
    side: 'driver',
    family,
    text,
    uncheckable,
  });
}
