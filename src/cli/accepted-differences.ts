/**
 * The differences between QEMU and our device models that the differential layout report
 * (layout-diff.ts) accepts, each with its reason: the peer test asserts that the diff holds exactly
 * these.
 */

import type { VirtioPciMode } from '../transport/pci/virtio-pci-function.js';
import { LAYOUT_DEVICES, LAYOUT_MODES, type LayoutDevice } from './layout-devices.js';

/** A documented difference: the rows it covers (section and field pattern), for which devices and modes, and why. */
export interface AcceptedDifference {
  readonly devices: readonly LayoutDevice[];
  readonly modes: readonly VirtioPciMode[];
  readonly section: string;
  readonly field: RegExp;
  readonly reason: string;
}

const WITH_MODERN: readonly VirtioPciMode[] = ['modern', 'transitional'];

/**
 * The differences between QEMU (7.2 and 10.0 alike) and our device models that are kept on purpose, each with its
 * reason. The peer test asserts that the diff holds exactly these: no other difference, and each
 * of these still occurs.
 */
export const ACCEPTED_DIFFERENCES: readonly AcceptedDifference[] = [
  {
    devices: LAYOUT_DEVICES,
    modes: WITH_MODERN,
    section: 'feature',
    field: /^(35 IN_ORDER|38 NOTIFICATION_DATA|39 NOTIF_CONFIG_DATA|43 SUSPEND)$/,
    reason:
      'our modern transport offers in-order use of buffers (6.2), notification data and queue_notif_config_data (4.1.5.2) and suspending the device (3.4); QEMU 7.2 has none of them, 10.0.2 offers IN_ORDER only with in_order=on and has no notification data or SUSPEND; all are optional for a device',
  },
  {
    devices: LAYOUT_DEVICES,
    modes: ['legacy'],
    section: 'feature',
    field: /^24 NOTIFY_ON_EMPTY$/,
    reason: 'a legacy-only bit transitional devices MAY offer (6.3): our models do not implement NOTIFY_ON_EMPTY',
  },
  {
    devices: LAYOUT_DEVICES,
    modes: ['legacy'],
    section: 'feature',
    field: /^30 bit30$/,
    reason: "bit 30 is QEMU's VIRTIO_F_BAD_FEATURE, a trap for legacy drivers that accept every bit; our models offer no trap bit",
  },
  {
    devices: ['blk'],
    modes: LAYOUT_MODES,
    section: 'feature',
    field: /^4 GEOMETRY$/,
    reason: 'CHS geometry is for BIOS-era guests; our model does not offer GEOMETRY',
  },
  {
    devices: ['blk'],
    modes: LAYOUT_MODES,
    section: 'config',
    field: /^0x10$/,
    reason: 'geometry (cylinders/heads/sectors): QEMU fills it, our model offers no GEOMETRY so it reads 0',
  },
  {
    devices: ['blk'],
    modes: LAYOUT_MODES,
    section: 'feature',
    field: /^1 SIZE_MAX$/,
    reason: 'our model bounds each data segment (size_max, default 1 MiB) so that one buffer is one bounded copy; QEMU has no such limit',
  },
  {
    devices: ['blk'],
    modes: LAYOUT_MODES,
    section: 'config',
    field: /^0x08$/,
    reason: 'size_max: 1 MiB in our model (SIZE_MAX offered), 0 in QEMU (not offered)',
  },
  {
    devices: ['blk'],
    modes: LAYOUT_MODES,
    section: 'config',
    field: /^0x(38|3c|4[048c]|5[048c])$/,
    reason:
      'QEMU (7.2 and 10.0) ends the config after write_zeroes_may_unmap (57 bytes, then all-ones) and sets may_unmap (its raw file can punch holes); our model presents the whole 96-byte structure (fields of features it does not offer read 0) and never unmaps',
  },
  {
    devices: ['blk'],
    modes: ['legacy'],
    section: 'feature',
    field: /^7 SCSI$/,
    reason: 'legacy SCSI passthrough (VIRTIO_BLK_F_SCSI) is not implemented',
  },
  {
    devices: ['blk'],
    modes: ['legacy'],
    section: 'feature',
    field: /^27 ANY_LAYOUT$/,
    reason:
      'QEMU withholds ANY_LAYOUT from its legacy virtio-blk (whose SCSI passthrough infers lengths from descriptor boundaries) although transitional devices MUST offer it (6.3); our model parses any layout and offers it',
  },
  {
    devices: ['net'],
    modes: LAYOUT_MODES,
    section: 'feature',
    field: /^0 CSUM$/,
    reason:
      'our model completes checksums itself, so it offers CSUM with any backend; QEMU offers it only when its backend carries a vnet header (tap), not with the hub port used here',
  },
  {
    devices: ['net'],
    modes: LAYOUT_MODES,
    section: 'feature',
    field: /^(2 CTRL_GUEST_OFFLOADS|19 CTRL_VLAN)$/,
    reason:
      'our model has no receive offloads for the driver to switch and no VLAN filter (without CTRL_VLAN every VLAN passes, as the spec allows)',
  },
  {
    devices: ['net'],
    modes: ['legacy'],
    section: 'feature',
    field: /^6 GSO$/,
    reason: 'the legacy VIRTIO_NET_F_GSO bit: our model offers no segmentation offload',
  },
  {
    devices: ['net'],
    modes: LAYOUT_MODES,
    section: 'queue',
    field: /^max sizes$/,
    reason: "QEMU's control queue has 64 entries; our model sizes every queue with one knob (queueSize, 256)",
  },
  {
    devices: ['console'],
    modes: LAYOUT_MODES,
    section: 'queue',
    field: /^(count|max sizes)$/,
    reason:
      "QEMU's virtio-serial reserves max_ports = 31 port slots for hot-plug (64 queues, control queues of 32); our model has as many port slots as ports it is built with (1 here: 4 queues, all of queueSize 128)",
  },
  {
    devices: ['console'],
    modes: LAYOUT_MODES,
    section: 'config',
    field: /^0x04$/,
    reason: 'max_nr_ports: 31 in QEMU, the number of ports our model was built with (1 here); see the queue count',
  },
];

/** The accepted difference covering a row, if any. */
export function acceptedReason(device: LayoutDevice, mode: VirtioPciMode, section: string, field: string): string | undefined {
  return ACCEPTED_DIFFERENCES.find(
    (a) => a.devices.includes(device) && a.modes.includes(mode) && a.section === section && a.field.test(field),
  )?.reason;
}
