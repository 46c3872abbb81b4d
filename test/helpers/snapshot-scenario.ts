/**
 * Functions caught mid-I/O, for snapshot tests and the snapshot fuzz target: a device of the fuzz
 * zoo on a modern virtio-pci function, driven synchronously through its registers with mock rings
 * playing the driver (split or packed, with or without VIRTIO_F_IN_ORDER), left with work in flight:
 * blk requests its backend holds, a net receive chain held for the next frame, console bytes and
 * control messages waiting for buffers.
 */

import { ArrayGuestMemory } from '../../src/memory/guest-memory.js';
import {
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_IN_ORDER,
  VIRTIO_F_RING_PACKED,
  VIRTIO_F_VERSION_1,
  bit,
} from '../../src/spec/features.js';
import { VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT } from '../../src/spec/blk.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
} from '../../src/spec/status.js';
import { MockPackedQueue } from '../../src/testing/mock-packed-queue.js';
import { MockQueue } from '../../src/testing/mock-queue.js';
import type { MockRing } from '../../src/testing/mock-ring.js';
import { makeZooDevice, type ZooDevice } from '../../fuzz/harness/device-zoo.js';
import { blkHeader } from './blk-request.js';
import { ModernHarness } from './modern-harness.js';
import { MODERN_NOTIFY_OFF_MULTIPLIER } from '../../src/transport/pci/notify-cfg.js';

export const SCENARIO_KINDS = ['rng', 'blk-held', 'net', 'console-multiport'] as const;
export type ScenarioKind = (typeof SCENARIO_KINDS)[number];

export interface Scenario {
  readonly kind: ScenarioKind;
  readonly packed: boolean;
  readonly inOrder: boolean;
}

/** Every scenario, by index (one input byte picks one). */
export const SCENARIOS: readonly Scenario[] = SCENARIO_KINDS.flatMap((kind) =>
  [false, true].flatMap((packed) => [false, true].map((inOrder) => ({ kind, packed, inOrder }))),
);

export function scenarioName(s: Scenario): string {
  return `${s.kind}-${s.packed ? 'packed' : 'split'}${s.inOrder ? '-in-order' : ''}`;
}

const MEM_SIZE = 1 << 18;
const QUEUE_SIZE = 8;

/** A function of scenario `s` over `memory` (fresh, status 0). */
export interface ScenarioFunction {
  readonly harness: ModernHarness<ZooDevice['device']>;
  readonly zoo: ZooDevice;
  readonly memory: ArrayGuestMemory;
}

export function scenarioFunction(s: Scenario, image?: Uint8Array): ScenarioFunction {
  const memory = new ArrayGuestMemory(MEM_SIZE);
  if (image !== undefined) memory.bytes.set(image);
  const zoo = makeZooDevice(s.kind);
  const harness = new ModernHarness({ memory, packed: s.packed }, zoo.device).enableBar();
  return { harness, zoo, memory };
}

/** A running function of scenario `s`: initialised by mock rings, with work in flight (see the file comment). */
export interface LiveScenario extends ScenarioFunction {
  readonly rings: MockRing[];
  notify(queue: number): void;
}

export function liveScenario(s: Scenario): LiveScenario {
  const f = scenarioFunction(s);
  const { harness, zoo, memory } = f;
  const features =
    (zoo.device.deviceFeatures & harness.fn.core.offeredFeatures) |
    bit(VIRTIO_F_VERSION_1) |
    bit(VIRTIO_F_INDIRECT_DESC) |
    bit(VIRTIO_F_EVENT_IDX) |
    (s.packed ? bit(VIRTIO_F_RING_PACKED) : 0n) |
    (s.inOrder ? bit(VIRTIO_F_IN_ORDER) : 0n);
  harness.negotiate(features);
  const rings = zoo.device.queueMaxSizes.map((_, i) => {
    const options = { size: QUEUE_SIZE, memory, seed: i + 1, base: 0x1000 + i * 0x6000 };
    return s.packed ? new MockPackedQueue(options) : new MockQueue(options);
  });
  rings.forEach((ring, i) => {
    const [driverAddr, deviceAddr] = ring instanceof MockPackedQueue ? [ring.driverAddr, ring.deviceAddr] : [ring.availAddr, ring.usedAddr];
    harness.setupQueue(i, { size: QUEUE_SIZE, descAddr: ring.descAddr, availAddr: driverAddr, usedAddr: deviceAddr });
  });
  harness.setStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
  const notify = (queue: number): void => harness.notify(queue * MODERN_NOTIFY_OFF_MULTIPLIER, 2, queue);
  const live = { ...f, rings, notify };
  switch (s.kind) {
    case 'rng':
      rings[0]!.addChain({ writable: [16] });
      notify(0);
      rings[0]!.addChain({ writable: [8, 8] });
      break;
    case 'blk-held':
      rings[0]!.addChain({ readable: [blkHeader(VIRTIO_BLK_T_OUT, 2), new Uint8Array(512).fill(0x5a)], writable: [1] });
      rings[0]!.addChain({ readable: [blkHeader(VIRTIO_BLK_T_IN, 1)], writable: [512, 1] });
      rings[0]!.addChain({ readable: [blkHeader(VIRTIO_BLK_T_IN, 3)], writable: [256, 256, 1], indirect: true });
      notify(0);
      // The second completes before the snapshot, out of order: the first and third stay in flight.
      zoo.held!.pending[1]!.release(true);
      break;
    case 'net':
      // A receive buffer too small for the frame: held for the next one (the device's stash).
      rings[0]!.addChain({ writable: [20] });
      zoo.hostInput(0, new Uint8Array(64).fill(0x11));
      rings[0]!.addChain({ writable: [128] });
      rings[1]!.addChain({ readable: [new Uint8Array(12), new Uint8Array(60).fill(0x22)] });
      break;
    case 'console-multiport':
      // DEVICE_READY with no control receive buffer: the DEVICE_ADD messages wait in the device.
      rings[3]!.addChain({ readable: [Uint8Array.of(0, 0, 0, 0, 0, 0, 1, 0)] });
      notify(3);
      break;
  }
  return live;
}
