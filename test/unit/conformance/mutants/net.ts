/**
 * Mutants of our virtio-net device (family 'net'): each one rule of spec 5.1 removed, by a wrapper
 * that changes the offer, a configuration field, or the ack of one kind of control command.
 */

import type { NetBackend, NetBackendPort } from '../../../../src/device/net/backend.js';
import { VirtioNetDevice } from '../../../../src/device/net/net-device.js';
import { featureSet } from '../../../../src/spec/features.js';
import {
  VIRTIO_NET_CONFIG_DUPLEX,
  VIRTIO_NET_CONFIG_MAC,
  VIRTIO_NET_CONFIG_MAX_VIRTQUEUE_PAIRS,
  VIRTIO_NET_CONFIG_MTU,
  VIRTIO_NET_CONFIG_SPEED,
  VIRTIO_NET_CONFIG_STATUS,
  VIRTIO_NET_CTRL_RX,
  VIRTIO_NET_ERR,
  VIRTIO_NET_F_CTRL_VQ,
  VIRTIO_NET_F_HASH_REPORT,
  VIRTIO_NET_F_MTU,
  VIRTIO_NET_F_SPEED_DUPLEX,
  VIRTIO_NET_OK,
  VIRTIO_NET_S_ANNOUNCE,
} from '../../../../src/spec/net.js';
import type { AccessSize } from '../../../../src/memory/access-size.js';
import type { Mutant, Mutants } from './mutant.js';
import { readablePart, wrappedMutant, writableBuffers, type WrapHooks } from './wrap-device.js';

const MAC = Uint8Array.of(0x02, 0x00, 0x00, 0x12, 0x34, 0x56);

/** A cable plugged back into the same NIC: every frame sent comes back (the receive checks need it). */
function loopBackend(): NetBackend {
  let port: NetBackendPort | undefined;
  return {
    attach: (p) => void (port = p),
    send: (frame) => {
      // A copy: the frame is lent for the call only (NetBackend.send).
      const copy = frame.slice();
      queueMicrotask(() => port?.receive(copy));
    },
    close: () => Promise.resolve(),
  };
}

/** `hooks`, or a function giving fresh hooks (with their own state) to each mutant plugged. */
function mutant(breaks: string, hooks: WrapHooks | (() => WrapHooks), queuePairs = 1): Mutant {
  return wrappedMutant(breaks, () => new VirtioNetDevice({ backend: loopBackend(), mac: MAC, queuePairs }), hooks);
}

/** A field of `size` bytes at `offset` reads `value` (the device's configuration grown to `configSize` for it). */
function field(offset: number, size: AccessSize, value: number, configSize: number, feature?: number): WrapHooks {
  return {
    configSize,
    ...(feature === undefined ? {} : { features: (f: bigint) => f | featureSet(feature) }),
    readConfig: (o, s, inner) => (o === offset && s === size ? value : inner()),
  };
}

/** Commands of class `cls` (and `cmd` when given) are acked `ack`. */
function ackMutant(breaks: string, cls: number, cmd: number | undefined, ack: number): Mutant {
  return mutant(breaks, {
    used(chain) {
      const command = readablePart(chain);
      const last = writableBuffers(chain).at(-1);
      if (chain.queue === 2 && last && command[0] === cls && (cmd === undefined || command[1] === cmd))
        chain.memory.write8(last.addr + last.len - 1, ack);
      return chain.len;
    },
  });
}

/**
 * Rewrites received packets on receiveq1: `edit` gets the first buffer's header bytes (a view of
 * guest memory, num_buffers already written) and the packet's first buffer's used len, and returns
 * the len to report.
 */
function rxMutant(breaks: string, edit: (header: Uint8Array, len: number, numBuffers: number) => number): Mutant {
  return mutant(breaks, () => {
    let remaining = 0;
    return {
      used(chain) {
        const b = writableBuffers(chain)[0];
        if (chain.queue !== 0 || !b || b.len < 12) return chain.len;
        if (remaining > 0) {
          remaining--;
          return chain.len;
        }
        const header = chain.memory.view(b.addr, 12);
        const n = header[10]! | (header[11]! << 8);
        remaining = Math.max(0, n - 1);
        return edit(header, chain.len, n);
      },
    };
  });
}

/** The first buffer's header byte `at` becomes `value`. */
const headerByte = (breaks: string, at: number, value: number): Mutant =>
  rxMutant(breaks, (header, len) => {
    header[at] = value;
    return len;
  });

const noCtrlVq = mutant('CTRL_VQ not offered, the features that need it still are', {
  features: (f) => f & ~featureSet(VIRTIO_NET_F_CTRL_VQ),
});
const SPEED_CONFIG = VIRTIO_NET_CONFIG_DUPLEX + 1;

export const netMutants: Mutants = {
  'net/rx-num-buffers-one': headerByte('num_buffers is 2 without MRG_RXBUF', 10, 2),
  'net/rx-num-buffers-mrg': rxMutant('num_buffers is one more than the buffers used', (header, len, n) => {
    header[10] = (n + 1) & 0xff;
    return len;
  }),
  'net/rx-mrg-buffers-filled': rxMutant('the first of several buffers is reported 4 bytes short', (_header, len, n) =>
    n > 1 ? len - 4 : len,
  ),
  'net/rx-flags-zero-without-guest-csum': headerByte('received flags are NEEDS_CSUM', 0, 1),
  'net/rx-no-gso-tcpv4': headerByte('received gso_type is TCPV4', 1, 1),
  'net/rx-no-gso-udp': headerByte('received gso_type is UDP', 1, 3),
  'net/rx-no-gso-tcpv6': headerByte('received gso_type is TCPV6', 1, 4),
  'net/rx-no-gso-udp-l4': headerByte('received gso_type is UDP_L4', 1, 5),
  'net/max-virtqueue-pairs-range': mutant('max_virtqueue_pairs reads 0', field(VIRTIO_NET_CONFIG_MAX_VIRTQUEUE_PAIRS, 2, 0, 10), 2),
  'net/mtu-range': mutant('MTU offered with mtu 20', field(VIRTIO_NET_CONFIG_MTU, 2, 20, 12, VIRTIO_NET_F_MTU)),
  'net/mtu-at-least-1280': mutant('MTU offered with mtu 576', field(VIRTIO_NET_CONFIG_MTU, 2, 576, 12, VIRTIO_NET_F_MTU)),
  'net/speed-range': mutant(
    'SPEED_DUPLEX offered with speed 0x80000000',
    field(VIRTIO_NET_CONFIG_SPEED, 4, 0x8000_0000, SPEED_CONFIG, VIRTIO_NET_F_SPEED_DUPLEX),
  ),
  'net/duplex-values': mutant(
    'SPEED_DUPLEX offered with duplex 5',
    field(VIRTIO_NET_CONFIG_DUPLEX, 1, 5, SPEED_CONFIG, VIRTIO_NET_F_SPEED_DUPLEX),
  ),
  'net/hash-report-needs-ctrl-vq': mutant('HASH_REPORT offered, CTRL_VQ not', {
    features: (f) => (f | featureSet(VIRTIO_NET_F_HASH_REPORT)) & ~featureSet(VIRTIO_NET_F_CTRL_VQ),
  }),
  'net/ctrl-rx-extra-needs-ctrl-vq': noCtrlVq,
  'net/ctrl-unknown-class-err': ackMutant('commands of class 0xee are acked OK', 0xee, undefined, VIRTIO_NET_OK),
  'net/ctrl-rx-promisc': ackMutant('PROMISC is acked ERR', VIRTIO_NET_CTRL_RX, 0, VIRTIO_NET_ERR),
  'net/ctrl-rx-allmulti': ackMutant('ALLMULTI is acked ERR', VIRTIO_NET_CTRL_RX, 1, VIRTIO_NET_ERR),
  'net/ctrl-rx-alluni': ackMutant('ALLUNI is acked ERR', VIRTIO_NET_CTRL_RX, 2, VIRTIO_NET_ERR),
  'net/ctrl-rx-nomulti': ackMutant('NOMULTI is acked ERR', VIRTIO_NET_CTRL_RX, 3, VIRTIO_NET_ERR),
  'net/ctrl-rx-nouni': ackMutant('NOUNI is acked ERR', VIRTIO_NET_CTRL_RX, 4, VIRTIO_NET_ERR),
  'net/ctrl-rx-nobcast': ackMutant('NOBCAST is acked ERR', VIRTIO_NET_CTRL_RX, 5, VIRTIO_NET_ERR),
  'net/mac-addr-set-updates-mac': mutant('mac keeps the permanent address after MAC_ADDR_SET', {
    readConfig: (o, s, inner) => (s === 1 && o >= VIRTIO_NET_CONFIG_MAC && o < VIRTIO_NET_CONFIG_MAC + 6 ? MAC[o]! : inner()),
  }),
  'net/mac-addr-set-bumps-generation': mutant('configuration changes are not reported', { silentConfigChanges: true }),
  'net/announce-ack-clears': mutant('VIRTIO_NET_S_ANNOUNCE stays set', {
    readConfig: (o, _s, inner) => (o === VIRTIO_NET_CONFIG_STATUS ? inner() | VIRTIO_NET_S_ANNOUNCE : inner()),
  }),
};
