/**
 * virtio-net's controlq (spec 5.1.9.5): each command parsed, carried out when the negotiated features
 * allow it, and acknowledged with VIRTIO_NET_OK or VIRTIO_NET_ERR in its one writable byte. In audit
 * mode, a command the features do not allow the driver is also recorded (5.1.9.5.1.2, 5.1.9.5.2.2).
 */

import { RequestShapeError } from '../../errors.js';
import type { VirtioDeviceHost } from '../../core/virtio-device.js';
import type { DeviceQueue } from '../../queue/types.js';
import { DRIVER_REQUIREMENTS as R } from '../../spec/driver-requirements.js';
import { hasFeature } from '../../spec/features.js';
import {
  netRxCommandFeature,
  VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN,
  VIRTIO_NET_CTRL_RX_ALLMULTI,
  VIRTIO_NET_CTRL_RX_ALLUNI,
  VIRTIO_NET_CTRL_RX_NOBCAST,
  VIRTIO_NET_CTRL_RX_NOMULTI,
  VIRTIO_NET_CTRL_RX_NOUNI,
  VIRTIO_NET_CTRL_RX_PROMISC,
  VIRTIO_NET_ERR,
  VIRTIO_NET_F_CTRL_MAC_ADDR,
  VIRTIO_NET_F_CTRL_RX,
  VIRTIO_NET_F_GUEST_ANNOUNCE,
  VIRTIO_NET_F_MQ,
  VIRTIO_NET_OK,
} from '../../spec/net.js';
import { writeChain } from '../chain-bytes.js';
import { parseNetCtrlRequest, type NetCtrlRequest } from './ctrl-request.js';
import type { NetDeviceStats } from './net-stats.js';
import type { RxFilter, RxModes } from './rx-filter.js';

/** RX-class command -> the mode it sets (5.1.9.5.1; the feature each needs: netRxCommandFeature). */
const RX_MODE_COMMANDS: ReadonlyMap<number, keyof RxModes> = new Map([
  [VIRTIO_NET_CTRL_RX_PROMISC, 'promisc'],
  [VIRTIO_NET_CTRL_RX_ALLMULTI, 'allmulti'],
  [VIRTIO_NET_CTRL_RX_ALLUNI, 'alluni'],
  [VIRTIO_NET_CTRL_RX_NOMULTI, 'nomulti'],
  [VIRTIO_NET_CTRL_RX_NOUNI, 'nouni'],
  [VIRTIO_NET_CTRL_RX_NOBCAST, 'nobcast'],
]);

/** What the control commands change in the device. */
export interface NetControlTarget {
  readonly stats: NetDeviceStats;
  readonly filter: RxFilter;
  /** Queue pairs the device offers. */
  readonly maxPairs: number;
  /** The negotiated features. */
  features(): bigint;
  host(): VirtioDeviceHost | undefined;
  /** VIRTIO_NET_CTRL_MAC_ADDR_SET: the MAC in config space (5.1.9.5.2.1). */
  setMac(mac: Uint8Array): void;
  /** VIRTIO_NET_CTRL_ANNOUNCE_ACK: VIRTIO_NET_S_ANNOUNCE cleared. */
  announced(): void;
  /** VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, checked. */
  setActivePairs(pairs: number): void;
}

/** Answer every command the controlq `q` holds, bounded by its size, then one used buffer notification. */
export function processNetControlq(q: DeviceQueue, dev: NetControlTarget): void {
  let used = 0;
  for (let n = 0; n < q.size; n++) {
    const chain = q.pop();
    if (!chain) break;
    let ack: number;
    try {
      ack = executeCtrl(parseNetCtrlRequest(chain), dev);
    } catch (err) {
      if (!(err instanceof RequestShapeError)) throw err;
      ack = VIRTIO_NET_ERR;
    }
    if (ack !== VIRTIO_NET_OK) dev.stats.ctrlErrors++;
    const writable = chain.writableBytes >= 1;
    if (writable) writeChain(chain, 0, Uint8Array.of(ack));
    q.pushUsed(chain.head, writable ? 1 : 0);
    used++;
  }
  if (used > 0) dev.host()?.usedBuffers(q.index);
}

/** Audit (5.1.9.5.1.2, 5.1.9.5.2.2): commands the negotiated features do not allow the driver. */
function auditCtrl(req: NetCtrlRequest, has: (n: number) => boolean, host: VirtioDeviceHost): void {
  const audit = host.audit!;
  if (req.kind === 'rx-mode') {
    const needs = netRxCommandFeature(req.command);
    if (needs !== undefined && !has(needs))
      audit(
        needs === VIRTIO_NET_F_CTRL_RX ? R.netCtrlRx : R.netCtrlRxExtra,
        `VIRTIO_NET_CTRL_RX command ${req.command} without ${needs === VIRTIO_NET_F_CTRL_RX ? 'CTRL_RX' : 'CTRL_RX_EXTRA'}`,
      );
  } else if ((req.kind === 'mac-table' || req.kind === 'mac-addr') && !has(VIRTIO_NET_F_CTRL_RX))
    audit(R.netCtrlMac, `VIRTIO_NET_CTRL_MAC ${req.kind === 'mac-table' ? 'TABLE_SET' : 'ADDR_SET'} without CTRL_RX`);
}

/** Carry out a control command; VIRTIO_NET_ERR for one the negotiated features do not allow. */
function executeCtrl(req: NetCtrlRequest, dev: NetControlTarget): number {
  const features = dev.features();
  const has = (n: number): boolean => hasFeature(features, n);
  const host = dev.host();
  if (host?.audit !== undefined) auditCtrl(req, has, host);
  switch (req.kind) {
    case 'rx-mode': {
      const mode = RX_MODE_COMMANDS.get(req.command);
      const needs = netRxCommandFeature(req.command);
      if (mode === undefined || needs === undefined || !has(needs)) return VIRTIO_NET_ERR;
      dev.filter.modes[mode] = req.on;
      return VIRTIO_NET_OK;
    }
    case 'mac-table':
      if (!has(VIRTIO_NET_F_CTRL_RX)) return VIRTIO_NET_ERR;
      dev.filter.setMacTable(req.unicast, req.multicast);
      return VIRTIO_NET_OK;
    case 'mac-addr':
      if (!has(VIRTIO_NET_F_CTRL_MAC_ADDR)) return VIRTIO_NET_ERR;
      dev.setMac(req.mac);
      return VIRTIO_NET_OK;
    case 'announce-ack':
      if (!has(VIRTIO_NET_F_GUEST_ANNOUNCE)) return VIRTIO_NET_ERR;
      dev.announced();
      return VIRTIO_NET_OK;
    case 'mq-pairs':
      if (!has(VIRTIO_NET_F_MQ) || req.pairs < VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN || req.pairs > dev.maxPairs) return VIRTIO_NET_ERR;
      dev.setActivePairs(req.pairs);
      return VIRTIO_NET_OK;
    case 'unsupported':
      return VIRTIO_NET_ERR;
  }
}
