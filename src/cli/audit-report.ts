/**
 * The driver audit as the CLI prints it (`virtio-ts boot --audit`): per device, each driver-side
 * statement the driver broke (ID, level, section, times, the first occurrence and the access that
 * broke it), or "clean".
 */

import type { DriverAuditFinding } from '../core/driver-audit.js';

/** One audited device. */
export interface AuditedDevice {
  readonly name: string;
  readonly findings: readonly DriverAuditFinding[];
}

/** The audit as lines of text (no trailing newline). */
export function formatDriverAudit(devices: readonly AuditedDevice[]): string[] {
  const width = Math.max(...devices.map((d) => d.name.length));
  const out: string[] = [];
  for (const d of devices) {
    if (d.findings.length === 0) {
      out.push(`  ${d.name.padEnd(width)}  clean`);
      continue;
    }
    for (const f of d.findings) {
      const r = f.requirement;
      out.push(`  ${d.name.padEnd(width)}  ${r.id} (${r.level}, ${r.section}) x${f.count}: ${r.text}`);
      out.push(`  ${' '.repeat(width)}    first: ${f.detail}; by ${f.access}`);
    }
  }
  return out;
}
