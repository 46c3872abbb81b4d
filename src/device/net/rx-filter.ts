/**
 * The receive filter the control queue programs (5.1.9.5.1 rx modes, 5.1.9.5.2 MAC table). At reset
 * the device is promiscuous, as QEMU's is, so a driver that never negotiates VIRTIO_NET_F_CTRL_RX
 * still receives every frame; a driver that does turns promiscuous mode off when it sets its rx mode.
 */

import { ETH_ALEN } from '../../spec/net.js';

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

  /** Whether a frame addressed to the first ETH_ALEN bytes of `frame` reaches a device with `ownMac`. */
  accepts(frame: Uint8Array, ownMac: Uint8Array): boolean {
    if (this.modes.promisc) return true;
    if (frame.byteLength < ETH_ALEN) return false;
    const dest = frame.subarray(0, ETH_ALEN);
    if (isBroadcast(dest)) return !this.modes.nobcast;
    if ((dest[0]! & 1) !== 0) {
      if (this.modes.nomulti) return false;
      return this.modes.allmulti || this.multicastOverflow || this.multicast.some((m) => sameMac(m, dest));
    }
    if (this.modes.nouni) return false;
    return this.modes.alluni || this.unicastOverflow || sameMac(dest, ownMac) || this.unicast.some((m) => sameMac(m, dest));
  }
}

function isBroadcast(mac: Uint8Array): boolean {
  for (let i = 0; i < ETH_ALEN; i++) if (mac[i] !== 0xff) return false;
  return true;
}

function sameMac(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < ETH_ALEN; i++) if (a[i] !== b[i]) return false;
  return true;
}
