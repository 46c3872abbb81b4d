/**
 * `--ring split|packed`, shared by demo, lspci, probe, diff and boot: the virtqueue format to negotiate (the
 * split ring, 2.7, or the packed ring, 2.8, by VIRTIO_F_RING_PACKED), and the line that says which
 * one the driver negotiated and why. Given, the devices offer the packed ring (demo, lspci, boot) or QEMU's
 * device gets `packed=on` (probe, for --ring packed) and the driver takes the format named; not
 * given, the devices are as QEMU's by default (no packed ring) and the driver takes what is offered.
 * diff has no driver negotiating: `--ring packed` offers the packed ring on both sides it compares.
 */

import { UsageError } from '../errors.js';
import type { VirtioDriver } from '../driver/virtio-driver.js';
import type { RingFormat } from '../queue/ring-format.js';
import { hasFeature, VIRTIO_F_RING_PACKED } from '../spec/features.js';

export type RingOption = RingFormat['name'];

const RINGS: readonly RingOption[] = ['split', 'packed'];

/** --ring, checked; undefined when not given. */
export function parseRing(value: string | undefined): RingOption | undefined {
  if (value === undefined) return undefined;
  const found = RINGS.find((r) => r === value);
  if (found === undefined) throw new UsageError(`--ring ${value}: one of ${RINGS.join(', ')}`);
  return found;
}

/** The packed ring needs VIRTIO_F_VERSION_1: refuse `--ring packed` where only the legacy interface is used. */
export function checkRingInterface(ring: RingOption | undefined, legacyOnly: string | undefined): void {
  if (ring === 'packed' && legacyOnly !== undefined)
    throw new UsageError(`--ring packed needs the modern interface, and ${legacyOnly} uses the legacy one (split ring only)`);
}

/** "packed (VIRTIO_F_RING_PACKED offered, negotiated)" and the like: the negotiated ring and why. */
export function describeRing(drv: VirtioDriver): string {
  const offered = hasFeature(drv.deviceFeatures, VIRTIO_F_RING_PACKED);
  const why = offered
    ? `VIRTIO_F_RING_PACKED offered, ${hasFeature(drv.features, VIRTIO_F_RING_PACKED) ? 'negotiated' : 'not negotiated'}`
    : `VIRTIO_F_RING_PACKED not offered${drv.transport.kind === 'legacy' ? ': the legacy interface has 32 feature bits' : ''}`;
  return `${drv.ringFormat.name} (${why})`;
}
