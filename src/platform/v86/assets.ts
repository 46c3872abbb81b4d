/**
 * The Linux guests' files (kernel, initramfs, BIOS), built from Debian packages by
 * scripts/guest/build-assets.sh under .cache/linux-guest (or $VIRTIO_TS_GUEST_CACHE): one folder per
 * kernel, each with its own saved states.
 */

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BusError, UsageError } from '../../errors.js';
import { trackChild } from '../cleanup.js';

/** The repository (or installed package) root: this file is dist/src/platform/v86/assets.js. */
const PACKAGE_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const BUILD_SCRIPT = join(PACKAGE_ROOT, 'scripts', 'guest', 'build-assets.sh');

export interface GuestAssets {
  readonly dir: string;
  readonly kernel: string;
  readonly initrd: string;
  readonly bios: string;
  /** The build's manifest (kernel version, input hash): saved states are keyed on it. */
  readonly manifest: string;
}

/** Where the guest folders live. */
export function guestCacheDir(): string {
  return process.env['VIRTIO_TS_GUEST_CACHE'] ?? join(PACKAGE_ROOT, '.cache', 'linux-guest');
}

/** The kernels the build provides, each with the folder of its assets in the guest cache (`.cache/linux-guest`). */
export const GUEST_KERNELS = {
  /** Debian 12's 686 kernel. */
  '6.1': '.',
  /** Debian 12's 686-pae kernel, which may place 64-bit BARs above 4 GiB (v86 cannot reach them). */
  '6.1-pae': '686-pae',
  /** The 686 kernel of Debian 12's backports suite. */
  '6.5': '6.5-686',
} as const;

/** A kernel the build provides: 6.1, 6.1-pae or 6.5. */
export type GuestKernel = keyof typeof GUEST_KERNELS;

/** The kernel a guest boots unless told otherwise: `$VIRTIO_TS_GUEST_KERNEL`, or 6.1. */
export function defaultGuestKernel(): GuestKernel {
  const name = process.env['VIRTIO_TS_GUEST_KERNEL'] ?? '6.1';
  if (!Object.hasOwn(GUEST_KERNELS, name)) {
    throw new UsageError(`VIRTIO_TS_GUEST_KERNEL=${name}: use one of ${Object.keys(GUEST_KERNELS).join(', ')}`);
  }
  return name as GuestKernel;
}

/** Where the assets of `kernel` live. */
export function guestAssetDir(kernel: GuestKernel = defaultGuestKernel()): string {
  return join(guestCacheDir(), GUEST_KERNELS[kernel]);
}

/** The built assets; throws a BusError saying how to build them when any is missing. */
export function findGuestAssets(dir = guestAssetDir()): GuestAssets {
  const assets = {
    dir,
    kernel: join(dir, 'vmlinuz'),
    initrd: join(dir, 'initramfs.cpio.gz'),
    bios: join(dir, 'bios.bin'),
  };
  const manifest = join(dir, 'manifest');
  const missing = [assets.kernel, assets.initrd, assets.bios, manifest].filter((f) => !existsSync(f));
  if (missing.length > 0) {
    throw new BusError(`Linux guest assets missing (${missing.join(', ')}): run \`npm run setup\` or \`bash ${BUILD_SCRIPT}\``);
  }
  return { ...assets, manifest: readFileSync(manifest, 'utf8') };
}

/** Whether every kernel's assets are built and match the build inputs (the build script's --check). */
export function guestAssetsCurrent(): boolean {
  const check = spawnSync('bash', [BUILD_SCRIPT, '--check'], {
    env: { ...process.env, VIRTIO_TS_GUEST_CACHE: guestCacheDir() },
    stdio: 'ignore',
  });
  return check.status === 0;
}

/** Progress of a build: step `step` of `total` started. */
export type BuildProgress = (step: number, total: number, what: string) => void;

/**
 * Build every kernel's assets when they are missing or stale (a no-op when current), reporting each
 * step, and resolve with those of `kernel`. Rejects with the script's output when it fails.
 */
export function buildGuestAssets(onStep?: BuildProgress, kernel: GuestKernel = defaultGuestKernel()): Promise<GuestAssets> {
  return new Promise((resolve, reject) => {
    // In a process group of its own, so that ending us ends the whole build (the script's EXIT trap
    // removes its work folder on SIGTERM).
    const child = spawn('bash', [BUILD_SCRIPT], {
      env: { ...process.env, VIRTIO_TS_GUEST_CACHE: guestCacheDir() },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const untrack = child.pid === undefined ? () => undefined : trackChild(-child.pid, 'SIGTERM');
    let output = '';
    let pending = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const m = /^STEP (\d+)\/(\d+) (.*)$/.exec(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
        if (m) onStep?.(Number(m[1]), Number(m[2]), m[3]!);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    child.on('error', (err) => reject(new BusError(`cannot run ${BUILD_SCRIPT}`, { cause: err })));
    child.on('close', (code) => {
      untrack();
      if (code === 0) resolve(findGuestAssets(guestAssetDir(kernel)));
      else reject(new BusError(`building the Linux guest assets failed (exit ${code}):\n${output}`));
    });
  });
}
