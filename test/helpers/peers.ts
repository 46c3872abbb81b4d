/**
 * The real peers the peer suite runs against, as legs of a matrix: scripts/test.mjs runs
 * test/peer/qemu once per QEMU version and test/peer/linux once per kernel, the legs side by side,
 * each with the environment that makes it that leg's peer the default ($VIRTIO_TS_QEMU,
 * $VIRTIO_TS_GUEST_KERNEL). A leg whose peer is missing, or is another version, fails: it never
 * skips. Tests that need one particular peer name it ({@link QEMU_PEERS}, LinuxGuest's `kernel`).
 */

import { findGuestAssets, guestAssetDir, type GuestKernel } from '../../src/platform/v86/assets.js';
import { findQemu, qemuVersion } from '../../src/platform/qtest/qemu-process.js';
import { QEMU_PEERS, qemuPeerBinary, type QemuPeer } from '../../src/platform/qtest/qemu-versions.js';
import { BusError } from '../../src/errors.js';

export { QEMU_PEERS, qemuPeerBinary, type QemuPeer };

export interface PeerLeg {
  /** e.g. "qemu-10.0": what $VIRTIO_TS_PEERS selects. */
  readonly name: string;
  /** The folder of dist/test whose files run in this leg. */
  readonly dir: string;
  /** What makes this leg's peer the default one. */
  readonly env: Readonly<Record<string, string>>;
  /** Throws, saying how to get it, when the leg's peer is missing; otherwise describes it. */
  readonly check: () => string;
}

const qemuLeg = (version: QemuPeer): PeerLeg => ({
  name: `qemu-${version}`,
  dir: 'peer/qemu',
  env: { VIRTIO_TS_QEMU: QEMU_PEERS[version] },
  check: () => {
    const binary = qemuPeerBinary(version);
    return `QEMU ${qemuVersion(binary)} (${findQemu(binary)})`;
  },
});

const linuxLeg = (kernel: GuestKernel): PeerLeg => ({
  name: `linux-${kernel}`,
  dir: 'peer/linux',
  env: { VIRTIO_TS_GUEST_KERNEL: kernel },
  check: () => {
    const assets = findGuestAssets(guestAssetDir(kernel));
    const version = /^kernel=(.*)$/m.exec(assets.manifest)?.[1] ?? '?';
    if (!version.startsWith(`${kernel}.`))
      throw new BusError(`${assets.dir} holds kernel ${version}, not ${kernel}: run \`npm run setup\``);
    return `Linux ${version} (${assets.dir})`;
  },
});

export const PEER_LEGS: readonly PeerLeg[] = [qemuLeg('7.2'), qemuLeg('10.0'), linuxLeg('6.1'), linuxLeg('6.5')];

/**
 * Files that do not use their leg's peer (they start the peers they test themselves, or none): they
 * run once, in the first leg of their folder, instead of repeating the same test in every leg.
 */
export const LEG_INDEPENDENT_FILES: readonly string[] = [
  // Boots the 686-pae kernel, whatever the leg.
  'peer/linux/pae-bar.test.js',
  // Drives v86's own virtio devices; no Linux boots.
  'peer/linux/v86-driver-bus.test.js',
  // Our shared memory BAR through v86's ports and memory accessors; no Linux boots.
  'peer/linux/v86-shared-memory.test.js',
  // A boot sector measures INTx latency in guest instructions; no Linux boots.
  'peer/linux/v86-intx-latency.test.js',
  // The facilities' conformance checks on v86's own devices; no Linux boots.
  'peer/linux/conformance-facilities-v86.test.js',
  // Starts each QEMU version by name.
  'peer/qemu/versions.test.js',
  // Starts each QEMU version by name (shared memory on 10.0's virtio-gpu, its absence on 7.2).
  'peer/qemu/shared-memory.test.js',
];
