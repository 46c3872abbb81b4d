/**
 * The receive filter the control queue programs (5.1.9.5.1 rx modes, 5.1.9.5.2 MAC table). At reset
 * the device is promiscuous, as QEMU's is, so a driver that never negotiates VIRTIO_NET_F_CTRL_RX
 * still receives every frame; a driver that does turns promiscuous mode off when it sets its rx mode.
 */

import { ETH_ALEN } from '../../spec/net.js';
import type { SnapshotReader } from '../../snapshot/snapshot-reader.js';
import { bytes, flag, list, struct, type SnapshotStruct, type SnapshotValue } from '../../snapshot/snapshot-value.js';

/** Entries kept per MAC table; a longer table turns on all-unicast or all-multicast instead. */
export const MAC_TABLE_ENTRIES = 64;

export interface RxModes {
  promisc: boolean;
  allmulti: boolean;
  alluni: boolean;
  nomulti: boolean;
  nouni: boolean;
  nobcast: boolean;
}

const RX_MODE_NAMES: readonly (keyof RxModes)[] = ['promisc', 'allmulti', 'alluni', 'nomulti', 'nouni', 'nobcast'];

export class RxFilter {
  readonly modes: RxModes = RxFilter.resetModes();
  private unicast: Uint8Array[] = [];
  private multicast: Uint8Array[] = [];
  private unicastOverflow = false;
  private multicastOverflow = false;

  private static resetModes(): RxModes {
    return { promisc: true, allmulti: false, alluni: false, nomulti: false, nouni: false, nobcast: false };
  }

  reset(): void {
    Object.assign(this.modes, RxFilter.resetModes());
    this.setMacTable([], []);
  }

  /** Replace both tables (VIRTIO_NET_CTRL_MAC_TABLE_SET); each entry is ETH_ALEN bytes. */
  setMacTable(unicast: readonly Uint8Array[], multicast: readonly Uint8Array[]): void {
    this.unicastOverflow = unicast.length > MAC_TABLE_ENTRIES;
    this.multicastOverflow = multicast.length > MAC_TABLE_ENTRIES;
    this.unicast = this.unicastOverflow ? [] : unicast.map((m) => m.slice());
    this.multicast = this.multicastOverflow ? [] : multicast.map((m) => m.slice());
  }

  /** The rx modes and MAC tables (docs/snapshots.md). */
  snapshot(): SnapshotStruct {
    const macs = (table: readonly Uint8Array[]): SnapshotValue => list(table.map(bytes));
    return struct({
      ...Object.fromEntries(RX_MODE_NAMES.map((mode) => [mode, flag(this.modes[mode])])),
      unicast: macs(this.unicast),
      multicast: macs(this.multicast),
      unicastOverflow: flag(this.unicastOverflow),
      multicastOverflow: flag(this.multicastOverflow),
    });
  }

  /** Check `r` (SnapshotError otherwise) and return what applies it. */
  prepareRestore(r: SnapshotReader): () => void {
    const modes = Object.fromEntries(RX_MODE_NAMES.map((mode) => [mode, r.flag(mode)])) as unknown as RxModes;
    const macs = (name: string): Uint8Array[] =>
      r.list(name, MAC_TABLE_ENTRIES).map((m, i) => {
        if (m.type !== 'bytes' || m.value.byteLength !== ETH_ALEN) throw r.rangeError(name, `entry ${i} is not ${ETH_ALEN} bytes`);
        return m.value.slice();
      });
    const unicast = macs('unicast');
    const multicast = macs('multicast');
    const unicastOverflow = r.flag('unicastOverflow');
    const multicastOverflow = r.flag('multicastOverflow');
    return () => {
      Object.assign(this.modes, modes);
      this.unicast = unicast;
      this.multicast = multicast;
      this.unicastOverflow = unicastOverflow;
      this.multicastOverflow = multicastOverflow;
    };
  }

  /** Whether a frame addressed to the first ETH_ALEN bytes of `frame` reaches a device with `ownMac`. */
  accepts(frame: Uint8Array, ownMac: Uint8Array): boolean {
    if (this.modes.promisc) return true;
    // `length`, not byteLength: V8 does not inline the latter's getter.
    if (frame.length < ETH_ALEN) return false;
    // The destination is the frame's first six bytes: compared in place, no view or closure per frame.
    if (isBroadcast(frame)) return !this.modes.nobcast;
    if ((frame[0]! & 1) !== 0) {
      if (this.modes.nomulti) return false;
      return this.modes.allmulti || this.multicastOverflow || inTable(this.multicast, frame);
    }
    if (this.modes.nouni) return false;
    return this.modes.alluni || this.unicastOverflow || sameMac(frame, ownMac) || inTable(this.unicast, frame);
  }
}

function inTable(table: readonly Uint8Array[], frame: Uint8Array): boolean {
  for (let i = 0; i < table.length; i++) if (sameMac(table[i]!, frame)) return true;
  return false;
}

function isBroadcast(mac: Uint8Array): boolean {
  for (let i = 0; i < ETH_ALEN; i++) if (mac[i] !== 0xff) return false;
  return true;
}

/** The first six bytes of `a` and `b` are equal. */
function sameMac(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < ETH_ALEN; i++) if (a[i] !== b[i]) return false;
  return true;
}
