/**
 * The QEMU versions the project installs (scripts/setup.d) and where each binary is: the peer
 * suite's legs and the CLI's `--qemu 7.2|10.0` name them by version.
 */

import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BusError } from '../../errors.js';
import { findQemu, qemuVersion } from './qemu-process.js';

/** The repository root: this file runs as dist/src/platform/qtest/qemu-versions.js. */
const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/** The QEMU binaries, by the version each must report. */
export const QEMU_PEERS = {
  /** Debian 12's qemu-system-x86, on PATH. */
  '7.2': 'qemu-system-x86_64',
  /** Debian 12's backports, unpacked into the cache. */
  '10.0': join(ROOT, '.cache', 'qemu-10.0', 'qemu-system-x86_64'),
} as const;

export type QemuPeer = keyof typeof QEMU_PEERS;

/** The setup step that installs each. */
const QEMU_SETUP: Readonly<Record<QemuPeer, string>> = { '7.2': 'scripts/setup.d/10-qemu.sh', '10.0': 'scripts/setup.d/15-qemu-10.sh' };

export function isQemuPeer(name: string): name is QemuPeer {
  return Object.hasOwn(QEMU_PEERS, name);
}

/** The QEMU binary of `version`; a BusError saying how to get it when it is missing or reports another version. */
export function qemuPeerBinary(version: QemuPeer): string {
  const binary = QEMU_PEERS[version];
  const howTo = `run \`npm run setup\` (${QEMU_SETUP[version]})`;
  let reported: string;
  try {
    reported = qemuVersion(binary);
  } catch (err) {
    throw new BusError(`QEMU ${version} is missing or does not run (${binary}): ${howTo}`, { cause: err });
  }
  if (!reported.startsWith(`${version}.`)) throw new BusError(`${findQemu(binary)} is QEMU ${reported}, not ${version}: ${howTo}`);
  return binary;
}
