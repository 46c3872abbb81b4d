/**
 * Receive steering for multiqueue (5.1.9.5.6): without RSS the device picks a receiveq per flow so
 * that one flow's frames stay in order on one queue. The flow is the IPv4/IPv6 address pair plus the
 * TCP/UDP ports when present; anything else goes to the first queue pair.
 */

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const ETH_HLEN = 14;

/** FNV-1a over `bytes[start, end)` continuing from `hash`. */
function fnv1a(hash: number, bytes: Uint8Array, start: number, end: number): number {
  for (let i = start; i < end; i++) hash = Math.imul(hash ^ bytes[i]!, 0x0100_0193);
  return hash >>> 0;
}

/** The receive queue pair (0..pairs-1) a frame belongs to. */
export function steerFrame(frame: Uint8Array, pairs: number): number {
  if (pairs <= 1 || frame.length < ETH_HLEN) return 0;
  const ethertype = (frame[12]! << 8) | frame[13]!;
  let hash = 0x811c_9dc5;
  let l4: number;
  let proto: number;
  if (ethertype === ETHERTYPE_IPV4 && frame.length >= ETH_HLEN + 20) {
    const ihl = (frame[ETH_HLEN]! & 0x0f) * 4;
    proto = frame[ETH_HLEN + 9]!;
    hash = fnv1a(hash, frame, ETH_HLEN + 12, ETH_HLEN + 20);
    l4 = ETH_HLEN + ihl;
  } else if (ethertype === ETHERTYPE_IPV6 && frame.length >= ETH_HLEN + 40) {
    proto = frame[ETH_HLEN + 6]!;
    hash = fnv1a(hash, frame, ETH_HLEN + 8, ETH_HLEN + 40);
    l4 = ETH_HLEN + 40;
  } else {
    return 0;
  }
  if ((proto === IPPROTO_TCP || proto === IPPROTO_UDP) && frame.length >= l4 + 4) hash = fnv1a(hash, frame, l4, l4 + 4);
  return hash % pairs;
}
