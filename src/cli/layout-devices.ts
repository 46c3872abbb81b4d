/**
 * The device types the differential layout report (layout-diff.ts) and the conformance targets
 * cover, in which modes, and each as a pair configured alike: QEMU's -device arguments and our
 * device model with its knobs set as QEMU's defaults.
 */

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { VirtioDevice } from '../core/virtio-device.js';
import { MemoryBlockBackend } from '../device/blk/memory-backend.js';
import { BlkDevice } from '../device/blk/blk-device.js';
import { VirtioConsoleDevice } from '../device/console/console-device.js';
import { createMemoryNetPair } from '../device/net/memory-pair.js';
import { VirtioNetDevice } from '../device/net/net-device.js';
import { RngDevice } from '../device/rng/rng-device.js';
import type { VirtioPciMode } from '../transport/pci/virtio-pci-function.js';
import type { RingOption } from './ring-option.js';

/** The device types the report covers. */
export type LayoutDevice = 'rng' | 'blk' | 'net' | 'console';
export const LAYOUT_DEVICES: readonly LayoutDevice[] = ['rng', 'blk', 'net', 'console'];
export const LAYOUT_MODES: readonly VirtioPciMode[] = ['modern', 'transitional', 'legacy'];

/** QEMU's mode properties (shared/QTEST.md). */
const MODE_PROPS: Readonly<Record<VirtioPciMode, string>> = {
  modern: ',disable-legacy=on',
  transitional: '',
  legacy: ',disable-modern=on',
};

/** The blk image both sides get: 1 MiB. */
const DISK_BYTES = 1 << 20;
/** QEMU's default MAC for the first NIC (qemu_macaddr_default_if_unset): 52:54:00:12:34:56. */
const QEMU_DEFAULT_MAC = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);
/** QEMU's (7.2 and 10.0) virtio-rng queue size. */
const QEMU_RNG_QUEUE_SIZE = 8;
/** max_discard_sectors and max_write_zeroes_sectors QEMU (7.2 and 10.0) presents for a raw image (read over qtest). */
const QEMU_BLK_MAX_DISCARD_SECTORS = 0x3f_ffff;
/** Where our models sit on the in-process bus; QEMU gets the same slot. */
export const LAYOUT_SLOT = 4;

/** QEMU's -device (and backend) arguments for `device` in `mode` and `ring` at {@link LAYOUT_SLOT}; `dir` holds the blk image. */
export async function qemuArgs(device: LayoutDevice, mode: VirtioPciMode, ring: RingOption, dir: string): Promise<string[]> {
  const at = `addr=0x${LAYOUT_SLOT.toString(16)}${MODE_PROPS[mode]}${ring === 'packed' ? ',packed=on' : ''}`;
  switch (device) {
    case 'rng':
      return ['-device', `virtio-rng-pci,${at}`];
    case 'blk': {
      const image = join(dir, 'layout.img');
      await writeFile(image, new Uint8Array(DISK_BYTES));
      return ['-drive', `if=none,id=d0,file=${image},format=raw`, '-device', `virtio-blk-pci,drive=d0,${at}`];
    }
    case 'net':
      return ['-netdev', 'hubport,id=n0,hubid=0', '-device', `virtio-net-pci,netdev=n0,${at}`];
    case 'console':
      return [
        '-chardev',
        'null,id=c0',
        '-device',
        `virtio-serial-pci,id=s0,${at}`,
        '-device',
        'virtconsole,bus=s0.0,chardev=c0,name=virtio-ts.layout',
      ];
  }
}

/**
 * Our device model of `device`, with its knobs set as QEMU's defaults (as a QEMU user sets
 * properties): rng queue size 8, blk topology all zero and discard/write-zeroes limits of QEMU's
 * raw file, net the first NIC's MAC. What no knob covers shows up in the diff.
 */
export function ourDevice(device: LayoutDevice): VirtioDevice {
  switch (device) {
    case 'rng':
      return new RngDevice({ queueSize: QEMU_RNG_QUEUE_SIZE });
    case 'blk':
      return new BlkDevice({
        backend: new MemoryBlockBackend(DISK_BYTES),
        topology: { physicalBlockExp: 0, alignmentOffset: 0, minIoSize: 0, optIoSize: 0 },
        maxDiscardSectors: QEMU_BLK_MAX_DISCARD_SECTORS,
        maxDiscardSeg: 1,
      });
    case 'net':
      return new VirtioNetDevice({ backend: createMemoryNetPair()[0], mac: QEMU_DEFAULT_MAC });
    case 'console':
      return new VirtioConsoleDevice({ ports: [{ console: true, name: 'virtio-ts.layout' }], multiport: true });
  }
}
