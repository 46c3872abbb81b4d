/**
 * The driver audit, planted: a hand-driven driver (raw register accesses through the in-process
 * machine's bus, rings laid out by hand) breaks one driver-side statement at a time, and the audit of
 * our device records exactly that statement, with the access that broke it; the same sequence done
 * right records nothing.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BlkDevice } from '../../../src/device/blk/blk-device.js';
import { MemoryBlockBackend } from '../../../src/device/blk/memory-backend.js';
import { createMemoryNetPair } from '../../../src/device/net/memory-pair.js';
import { VirtioNetDevice } from '../../../src/device/net/net-device.js';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import { VIRTIO_BLK_T_IN } from '../../../src/spec/blk.js';
import { DRIVER_REQUIREMENTS } from '../../../src/spec/driver-requirements.js';
import { bit, VIRTIO_F_RING_PACKED, VIRTIO_F_RING_RESET } from '../../../src/spec/features.js';
import {
  VIRTIO_NET_CTRL_MAC,
  VIRTIO_NET_CTRL_MAC_TABLE_SET,
  VIRTIO_NET_CTRL_RX,
  VIRTIO_NET_CTRL_RX_NOBCAST,
  VIRTIO_NET_CTRL_RX_PROMISC,
  VIRTIO_NET_ERR,
  VIRTIO_NET_F_CTRL_RX,
  VIRTIO_NET_F_CTRL_VQ,
  netCtrlQueueIndex,
} from '../../../src/spec/net.js';
import { PassThrough } from 'node:stream';
import { VirtioConsoleDevice } from '../../../src/device/console/console-device.js';
import { streamBytePort } from '../../../src/device/console/port-streams.js';
import { DeferredBackend } from '../../helpers/deferred-backend.js';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../../src/spec/ring.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE as ACK,
  VIRTIO_CONFIG_S_DRIVER as DRV,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FAILED,
  VIRTIO_CONFIG_S_FEATURES_OK as FOK,
} from '../../../src/spec/status.js';
import * as P from '../../../src/spec/virtio-pci.js';
import { QUEUE_SIZE, RING, RawDriver } from '../../helpers/raw-driver.js';

const rng = (options: Parameters<typeof RawDriver.open>[1] = {}) => RawDriver.open(new RngDevice(), options);
const net = () => RawDriver.open(new VirtioNetDevice({ backend: createMemoryNetPair()[0] }));
const blk = () => RawDriver.open(new BlkDevice({ backend: new MemoryBlockBackend(1 << 16) }));

/** Exactly one finding, of `id`, whose access matches `access`. */
function only(d: RawDriver, id: string, access?: RegExp): void {
  assert.deepEqual(d.ids, [id], JSON.stringify(d.audit.findings, null, 1));
  const f = d.audit.findings[0]!;
  assert.equal(f.count, 1);
  if (access !== undefined) assert.match(f.access, access);
}

describe('driver audit: a correct driver records nothing', () => {
  it('modern: reset, negotiation, queue set-up, DRIVER_OK, a request, config reads in a generation loop', async () => {
    const d = await rng({ msixVectors: 2 });
    await d.negotiate();
    await d.common(P.VIRTIO_PCI_COMMON_MSIX, 2, 0);
    await d.commonRead(P.VIRTIO_PCI_COMMON_MSIX, 2);
    await d.common(P.VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
    await d.common(P.VIRTIO_PCI_COMMON_Q_MSIX, 2, 1);
    await d.commonRead(P.VIRTIO_PCI_COMMON_Q_MSIX, 2);
    await d.setupQueue(0);
    await d.driverOk();
    d.writeSplitDescs([{ addr: RING.buffers, len: 64, flags: VIRTQ_DESC_F_WRITE }]);
    await d.postSplit(0);
    assert.equal(d.machine.memory.read16(RING.device + 2), 1, 'the device used the buffer');
    assert.deepEqual(d.ids, []);
  });

  it('blk: config fields read inside a generation loop, one lone read, a request within capacity', async () => {
    const d = await blk();
    await d.negotiate();
    await d.commonRead(P.VIRTIO_PCI_COMMON_CFGGENERATION, 1);
    await d.deviceConfigRead(0, 4);
    await d.deviceConfigRead(4, 4);
    await d.commonRead(P.VIRTIO_PCI_COMMON_CFGGENERATION, 1);
    await d.deviceConfigRead(20, 4);
    await d.setupQueue(0);
    await d.driverOk();
    postBlkRead(d, 0);
    await d.postSplit(0);
    assert.equal(d.machine.memory.read8(RING.buffers + 0x1000), 0, 'VIRTIO_BLK_S_OK');
    assert.deepEqual(d.ids, []);
  });

  it('legacy: the BAR0 sequence records nothing', async () => {
    const d = await rng({ mode: 'legacy' });
    await d.legacy(P.VIRTIO_PCI_STATUS, 1, 0);
    await d.legacy(P.VIRTIO_PCI_STATUS, 1, ACK);
    await d.legacy(P.VIRTIO_PCI_STATUS, 1, ACK | DRV);
    const offered = await d.legacy(P.VIRTIO_PCI_HOST_FEATURES, 4);
    await d.legacy(P.VIRTIO_PCI_GUEST_FEATURES, 4, offered);
    await d.legacy(P.VIRTIO_PCI_QUEUE_SEL, 2, 0);
    await d.legacy(P.VIRTIO_PCI_QUEUE_PFN, 4, RING.desc / 4096);
    await d.legacy(P.VIRTIO_PCI_STATUS, 1, ACK | DRV | VIRTIO_CONFIG_S_DRIVER_OK);
    assert.deepEqual(d.ids, []);
  });
});

/** A VIRTIO_BLK_T_IN of `length` bytes (one sector) at `sector`: header, data, status at RING.buffers. */
function postBlkRead(d: RawDriver, sector: number, length = 512): void {
  const mem = d.machine.memory;
  mem.write32(RING.buffers, VIRTIO_BLK_T_IN);
  mem.write32(RING.buffers + 4, 0);
  mem.write32(RING.buffers + 8, sector);
  mem.write32(RING.buffers + 12, 0);
  mem.write8(RING.buffers + 0x1000, 0xff);
  d.writeSplitDescs([
    { addr: RING.buffers, len: 16, flags: VIRTQ_DESC_F_NEXT, next: 1 },
    { addr: RING.buffers + 0x200, len: length, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, next: 2 },
    { addr: RING.buffers + 0x1000, len: 1, flags: VIRTQ_DESC_F_WRITE },
  ]);
}

const R = DRIVER_REQUIREMENTS;

describe('driver audit: status and initialisation, planted', () => {
  it(R.statusNoClear.id, async () => {
    const d = await rng();
    await d.negotiate();
    await d.status(ACK | DRV);
    only(d, R.statusNoClear.id, /write8 0x3 at BAR4\+0x14 \(common_cfg\+0x14\)/);
  });
  it(R.statusResetAfterFailed.id, async () => {
    const d = await rng();
    await d.status(0);
    await d.readStatus();
    await d.status(ACK | DRV | VIRTIO_CONFIG_S_FAILED);
    await d.status(ACK | DRV | VIRTIO_CONFIG_S_FAILED | FOK);
    only(d, R.statusResetAfterFailed.id, /write8 0x8b/);
  });
  it(R.initResetFirst.id, async () => {
    const d = await rng();
    await d.status(ACK);
    only(d, R.initResetFirst.id, /write8 0x1 at BAR4\+0x14/);
  });
  it(R.initStatusOrder.id, async () => {
    const d = await rng();
    await d.status(0);
    await d.readStatus();
    await d.status(DRV);
    only(d, R.initStatusOrder.id, /write8 0x2 at BAR4\+0x14/);
  });
  it(R.initNoConfigWrite.id, async () => {
    const d = await blk();
    await d.status(0);
    await d.readStatus();
    await d.status(ACK | DRV);
    await d.deviceConfigWrite(32, 1, 1);
    only(d, R.initNoConfigWrite.id, /write8 0x1 at BAR4\+0x2020 \(device_cfg\+0x20\)/);
  });
  it(R.initNoNewFeatures.id, async () => {
    const d = await rng();
    await d.negotiate();
    await d.common(P.VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
    await d.common(P.VIRTIO_PCI_COMMON_GF, 4, 1 << 28);
    only(d, R.initNoNewFeatures.id, /write32 0x10000000 at BAR4\+0xc/);
  });
  it(R.initQueueSetupState.id, async () => {
    const d = await rng();
    await d.status(0);
    await d.readStatus();
    await d.status(ACK | DRV);
    await d.common(P.VIRTIO_PCI_COMMON_Q_SIZE, 2, 4);
    only(d, R.initQueueSetupState.id, /write16 0x4 at BAR4\+0x18/);
  });
  it(R.initNoNotifyBeforeDriverOk.id, async () => {
    const d = await rng();
    await d.negotiate();
    await d.setupQueue(0);
    await d.notify(0);
    only(d, R.initNoNotifyBeforeDriverOk.id, /write16 0x0 at BAR4\+0x3000 \(notify\+0x0\)/);
  });
});

describe('driver audit: features, planted', () => {
  it(R.featuresOnlyOffered.id, async () => {
    const d = await rng();
    await d.negotiate(bit(63));
    assert.equal((await d.readStatus()) & FOK, 0, 'the device refused FEATURES_OK');
    only(d, R.featuresOnlyOffered.id, /write8 0xb at BAR4\+0x14/);
    assert.match(d.audit.findings[0]!.detail, /63/);
  });
  it(`${R.featuresOnlyOffered.id} (legacy)`, async () => {
    const d = await rng({ mode: 'legacy' });
    await d.legacy(P.VIRTIO_PCI_STATUS, 1, 0);
    await d.legacy(P.VIRTIO_PCI_STATUS, 1, ACK | DRV);
    await d.legacy(P.VIRTIO_PCI_GUEST_FEATURES, 4, 1 << 5);
    only(d, R.featuresOnlyOffered.id, /write32 0x20 at BAR0\+0x4 \(legacy header\+0x4\)/);
  });
  it(R.featuresDependencies.id, async () => {
    const d = await RawDriver.open(new VirtioNetDevice({ backend: createMemoryNetPair()[0] }));
    await d.negotiate(bit(VIRTIO_NET_F_CTRL_RX));
    only(d, R.featuresDependencies.id, /write8 0xb at BAR4\+0x14/);
    assert.match(d.audit.findings[0]!.detail, /feature 18 without 17/);
  });
  it(R.featuresVersion1.id, async () => {
    const d = await rng();
    await d.negotiate(0n, 0n);
    only(d, R.featuresVersion1.id, /write8 0xb at BAR4\+0x14/);
  });
});

describe('driver audit: common configuration, planted', () => {
  it(R.configGenerationLoop.id, async () => {
    const d = await blk();
    await d.negotiate();
    await d.deviceConfigRead(0, 4);
    await d.deviceConfigRead(4, 4);
    await d.readStatus();
    only(d, R.configGenerationLoop.id, /read8 at BAR4\+0x14/);
    assert.match(
      d.audit.findings[0]!.detail,
      /2 device configuration reads in a row \(offset\/size 0\/4 4\/4\) with no config_generation read before or after them \(before them: read8 at common_cfg\+0x14\)/,
    );
  });
  it(R.commonReadOnly.id, async () => {
    const d = await rng();
    await d.common(P.VIRTIO_PCI_COMMON_NUMQ, 2, 5);
    only(d, R.commonReadOnly.id, /write16 0x5 at BAR4\+0x12/);
  });
  it(R.commonQueueSizePow2.id, async () => {
    const d = await rng();
    await d.negotiate();
    await d.common(P.VIRTIO_PCI_COMMON_Q_SIZE, 2, 3);
    only(d, R.commonQueueSizePow2.id, /write16 0x3 at BAR4\+0x18/);
  });
  it(R.commonQueueSizeNonzero.id, async () => {
    const d = await rng({ packed: true });
    await d.negotiate(bit(VIRTIO_F_RING_PACKED));
    await d.common(P.VIRTIO_PCI_COMMON_Q_SIZE, 2, 0);
    only(d, R.commonQueueSizeNonzero.id, /write16 0x0 at BAR4\+0x18/);
  });
  it(R.commonConfigureBeforeEnable.id, async () => {
    const d = await rng();
    await d.negotiate();
    await d.setupQueue(0);
    await d.common(P.VIRTIO_PCI_COMMON_Q_DESCLO, 4, 0x40000);
    only(d, R.commonConfigureBeforeEnable.id, /write32 0x40000 at BAR4\+0x20/);
  });
  it(R.commonQueueEnableZero.id, async () => {
    const d = await rng();
    await d.negotiate();
    await d.common(P.VIRTIO_PCI_COMMON_Q_ENABLE, 2, 0);
    only(d, R.commonQueueEnableZero.id, /write16 0x0 at BAR4\+0x1c/);
  });
  it(R.commonResetWait.id, async () => {
    const d = await rng();
    await d.status(0);
    await d.status(ACK);
    only(d, R.commonResetWait.id, /write8 0x1 at BAR4\+0x14/);
  });
  it(R.commonQueueResetWait.id, async () => {
    const d = await rng();
    await d.start(bit(VIRTIO_F_RING_RESET));
    await d.common(P.VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
    await d.common(P.VIRTIO_PCI_COMMON_Q_RESET, 2, 1);
    await d.setupQueue(0);
    only(d, R.commonQueueResetWait.id, /write16 0x1 at BAR4\+0x1c/);
  });
  it(`${R.commonQueueResetWait.id}: reading queue_reset 0 first records nothing`, async () => {
    const d = await rng();
    await d.start(bit(VIRTIO_F_RING_RESET));
    await d.common(P.VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
    await d.common(P.VIRTIO_PCI_COMMON_Q_RESET, 2, 1);
    assert.equal(await d.commonRead(P.VIRTIO_PCI_COMMON_Q_RESET, 2), 0);
    await d.setupQueue(0);
    assert.deepEqual(d.ids, []);
  });
});

describe('driver audit: notifications and MSI-X, planted', () => {
  it(R.notifyWidth.id, async () => {
    const d = await rng();
    await d.start();
    await d.notify(0, 4);
    only(d, R.notifyWidth.id, /write32 0x0 at BAR4\+0x3000/);
  });
  it(R.notifyValue.id, async () => {
    const d = await rng();
    await d.start();
    await d.notify(0, 2, 7);
    only(d, R.notifyValue.id, /write16 0x7 at BAR4\+0x3000/);
  });
  it(R.msixVectorInTable.id, async () => {
    const d = await rng({ msixVectors: 2 });
    await d.negotiate();
    await d.common(P.VIRTIO_PCI_COMMON_Q_MSIX, 2, 5);
    assert.equal(await d.commonRead(P.VIRTIO_PCI_COMMON_Q_MSIX, 2), P.VIRTIO_MSI_NO_VECTOR);
    only(d, R.msixVectorInTable.id, /write16 0x5 at BAR4\+0x1a/);
  });
  it(R.msixVerifyVector.id, async () => {
    const d = await rng({ msixVectors: 2 });
    await d.negotiate();
    await d.common(P.VIRTIO_PCI_COMMON_MSIX, 2, 0);
    await d.common(P.VIRTIO_PCI_COMMON_Q_MSIX, 2, 1);
    only(d, R.msixVerifyVector.id, /write16 0x1 at BAR4\+0x1a/);
    assert.match(d.audit.findings[0]!.detail, /config_msix_vector written and never read back/);
  });
});

describe('driver audit: the legacy interface, planted', () => {
  it(R.legacyOneInterface.id, async () => {
    const d = await rng({ mode: 'transitional' });
    await d.legacy(P.VIRTIO_PCI_STATUS, 1, 0);
    await d.legacy(P.VIRTIO_PCI_STATUS, 1, ACK);
    await d.status(ACK | DRV);
    only(d, R.legacyOneInterface.id, /write8 0x3 at BAR4\+0x14/);
  });
  it(R.legacyReadOnly.id, async () => {
    const d = await rng({ mode: 'legacy' });
    await d.legacy(P.VIRTIO_PCI_QUEUE_NUM, 2, 4);
    only(d, R.legacyReadOnly.id, /write16 0x4 at BAR0\+0xc/);
  });
});

describe('driver audit: rings, planted', () => {
  const buf = RING.buffers;
  const cases: [string, (d: RawDriver) => Promise<void>][] = [
    [
      R.splitIndirectNegotiated.id,
      async (d) => {
        d.writeSplitDescs([{ addr: buf, len: 16, flags: VIRTQ_DESC_F_WRITE }], RING.indirect);
        d.writeSplitDescs([{ addr: RING.indirect, len: 16, flags: VIRTQ_DESC_F_INDIRECT }]);
        await d.postSplit(0);
      },
    ],
    [
      R.splitFraming.id,
      async (d) => {
        d.writeSplitDescs([
          { addr: buf, len: 16, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, next: 1 },
          { addr: buf + 16, len: 16, flags: 0 },
        ]);
        await d.postSplit(0);
      },
    ],
    [
      R.splitChainLength.id,
      async (d) => {
        d.writeSplitDescs([
          { addr: buf, len: 16, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, next: 1 },
          { addr: buf + 16, len: 16, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, next: 0 },
        ]);
        await d.postSplit(0);
      },
    ],
    [
      R.splitAvailIdx.id,
      async (d) => {
        d.writeSplitDescs([{ addr: buf, len: 16, flags: VIRTQ_DESC_F_WRITE }]);
        await d.postSplit(0);
        await d.setAvailIdx(0);
      },
    ],
  ];
  for (const [id, plant] of cases)
    it(id, async () => {
      const d = await rng();
      await d.start();
      await plant(d);
      only(d, id, /at BAR4\+0x3000 \(notify\+0x0\)/);
    });

  it(`${R.splitIndirectNext.id} (INDIRECT_DESC negotiated)`, async () => {
    const d = await rng();
    await d.start(bit(28));
    d.writeSplitDescs([{ addr: buf, len: 16, flags: VIRTQ_DESC_F_WRITE }], RING.indirect);
    d.writeSplitDescs([
      { addr: RING.indirect, len: 16, flags: VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, next: 1 },
      { addr: buf, len: 16, flags: VIRTQ_DESC_F_WRITE },
    ]);
    await d.postSplit(0);
    only(d, R.splitIndirectNext.id);
  });
  it(`${R.splitIndirectNested.id} (INDIRECT_DESC negotiated)`, async () => {
    const d = await rng();
    await d.start(bit(28));
    d.writeSplitDescs([{ addr: RING.indirect, len: 16, flags: VIRTQ_DESC_F_INDIRECT }], RING.indirect);
    d.writeSplitDescs([{ addr: RING.indirect, len: 16, flags: VIRTQ_DESC_F_INDIRECT }]);
    await d.postSplit(0);
    only(d, R.splitIndirectNested.id);
  });
  it(R.splitAlignment.id, async () => {
    const d = await rng();
    await d.negotiate();
    await d.setupQueue(0, { desc: RING.desc + 8, driver: RING.driver, device: RING.device });
    await d.driverOk();
    only(d, R.splitAlignment.id, /write8 0xf at BAR4\+0x14/);
  });
  it(R.packedAlignment.id, async () => {
    const d = await rng({ packed: true });
    await d.negotiate(bit(VIRTIO_F_RING_PACKED));
    await d.setupQueue(0, { desc: RING.desc + 8, driver: RING.driver, device: RING.device });
    await d.driverOk();
    only(d, R.packedAlignment.id, /write8 0xf at BAR4\+0x14/);
  });
  it(R.packedIndirectNegotiated.id, async () => {
    const d = await rng({ packed: true });
    await d.start(bit(VIRTIO_F_RING_PACKED));
    await d.postPacked(0, { addr: RING.indirect, len: 16, flags: VIRTQ_DESC_F_INDIRECT });
    only(d, R.packedIndirectNegotiated.id, /write16 0x0 at BAR4\+0x3000/);
  });
  it(R.packedChainLength.id, async () => {
    const d = await rng({ packed: true });
    await d.start(bit(VIRTIO_F_RING_PACKED));
    for (let slot = 0; slot < QUEUE_SIZE; slot++)
      d.writePacked(slot, { addr: buf, len: 16, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT }, 0);
    await d.notify(0);
    only(d, R.packedChainLength.id, /write16 0x0 at BAR4\+0x3000/);
  });
  it(R.packedFraming.id, async () => {
    const d = await rng({ packed: true });
    await d.start(bit(VIRTIO_F_RING_PACKED));
    d.writePacked(1, { addr: buf + 16, len: 16, flags: 0 }, 0);
    await d.postPacked(0, { addr: buf, len: 16, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT }, 0);
    only(d, R.packedFraming.id, /write16 0x0 at BAR4\+0x3000/);
  });
  it(`${R.packedIndirectFlags.id} (INDIRECT_DESC negotiated)`, async () => {
    const d = await rng({ packed: true });
    await d.start(bit(VIRTIO_F_RING_PACKED) | bit(28));
    d.writePacked(0, { addr: RING.indirect, len: 16, flags: VIRTQ_DESC_F_INDIRECT }, 0, RING.indirect);
    await d.postPacked(0, { addr: RING.indirect, len: 16, flags: VIRTQ_DESC_F_INDIRECT });
    only(d, R.packedIndirectFlags.id, /write16 0x0 at BAR4\+0x3000/);
  });
  it(`${R.packedIndirectInList.id} (INDIRECT_DESC negotiated)`, async () => {
    const d = await rng({ packed: true });
    await d.start(bit(VIRTIO_F_RING_PACKED) | bit(28));
    d.writePacked(0, { addr: buf, len: 16, flags: VIRTQ_DESC_F_WRITE }, 0, RING.indirect);
    d.writePacked(1, { addr: RING.indirect, len: 16, flags: VIRTQ_DESC_F_INDIRECT }, 0);
    await d.postPacked(0, { addr: buf, len: 16, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT }, 0);
    only(d, R.packedIndirectInList.id, /write16 0x0 at BAR4\+0x3000/);
  });
  it('a packed request done right records nothing', async () => {
    const d = await rng({ packed: true });
    await d.start(bit(VIRTIO_F_RING_PACKED));
    await d.postPacked(0, { addr: buf, len: 16, flags: VIRTQ_DESC_F_WRITE });
    assert.equal(d.machine.memory.read16(RING.desc + 14) & 0x8080, 0x8080, 'the device used the descriptor');
    assert.deepEqual(d.ids, []);
  });
});

describe('driver audit: device types, planted', () => {
  it(R.entropyWritableOnly.id, async () => {
    const d = await rng();
    await d.start();
    d.writeSplitDescs([
      { addr: RING.buffers, len: 16, flags: VIRTQ_DESC_F_NEXT, next: 1 },
      { addr: RING.buffers + 16, len: 16, flags: VIRTQ_DESC_F_WRITE },
    ]);
    await d.postSplit(0);
    only(d, R.entropyWritableOnly.id, /write16 0x0 at BAR4\+0x3000/);
  });
  it(R.blkWithinCapacity.id, async () => {
    const d = await blk();
    await d.start();
    postBlkRead(d, 1 << 20);
    await d.postSplit(0);
    assert.equal(d.machine.memory.read8(RING.buffers + 0x1000), 1, 'VIRTIO_BLK_S_IOERR');
    only(d, R.blkWithinCapacity.id, /write16 0x0 at BAR4\+0x3000/);
  });
  it(R.blkSectorMultiple.id, async () => {
    const d = await blk();
    await d.start();
    postBlkRead(d, 0, 100);
    await d.postSplit(0);
    only(d, R.blkSectorMultiple.id, /write16 0x0 at BAR4\+0x3000/);
  });
  it(R.cleanupExposedBuffers.id, async () => {
    const backend = new DeferredBackend(new Uint8Array(1 << 16));
    const d = await RawDriver.open(new BlkDevice({ backend }));
    await d.start();
    postBlkRead(d, 0);
    await d.postSplit(0);
    assert.equal(backend.pending.length, 1, 'the read is in flight');
    await d.postSplit(0);
    only(d, R.cleanupExposedBuffers.id, /write16 0x0 at BAR4\+0x3000/);
  });
  it(R.consoleBufferDirection.id, async () => {
    const input = new PassThrough();
    const d = await RawDriver.open(
      new VirtioConsoleDevice({ ports: [{ console: true, host: streamBytePort({ input, output: new PassThrough() }) }] }),
    );
    await d.start();
    d.writeSplitDescs([{ addr: RING.buffers, len: 16, flags: 0 }]);
    await d.postSplit(0);
    input.write('x');
    for (let i = 0; i < 50 && d.ids.length === 0; i++) await new Promise((r) => setTimeout(r, 2));
    only(d, R.consoleBufferDirection.id, /device processing/);
  });
  it(R.netNoConfigWrite.id, async () => {
    const d = await net();
    await d.start();
    await d.deviceConfigWrite(0, 1, 0x12);
    only(d, R.netNoConfigWrite.id, /write8 0x12 at BAR4\+0x2000 \(device_cfg\+0x0\)/);
  });
  const ctrl: [string, bigint, number, number, Uint8Array][] = [
    [R.netCtrlRx.id, 0n, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, Uint8Array.of(1)],
    [R.netCtrlRxExtra.id, bit(VIRTIO_NET_F_CTRL_RX), VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_NOBCAST, Uint8Array.of(1)],
    [R.netCtrlMac.id, 0n, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, new Uint8Array(8)],
  ];
  for (const [id, extra, cls, cmd, data] of ctrl)
    it(id, async () => {
      const d = await net();
      await d.negotiate(bit(VIRTIO_NET_F_CTRL_VQ) | extra);
      const ctrlq = netCtrlQueueIndex(1);
      await d.setupQueue(ctrlq);
      await d.driverOk();
      const mem = d.machine.memory;
      mem.write8(RING.buffers, cls);
      mem.write8(RING.buffers + 1, cmd);
      data.forEach((b, i) => mem.write8(RING.buffers + 0x100 + i, b));
      d.writeSplitDescs([
        { addr: RING.buffers, len: 2, flags: VIRTQ_DESC_F_NEXT, next: 1 },
        { addr: RING.buffers + 0x100, len: data.byteLength, flags: VIRTQ_DESC_F_NEXT, next: 2 },
        { addr: RING.buffers + 0x200, len: 1, flags: VIRTQ_DESC_F_WRITE },
      ]);
      await d.postSplit(0, ctrlq);
      assert.equal(mem.read8(RING.buffers + 0x200), VIRTIO_NET_ERR, 'the device refused the command');
      only(d, id, new RegExp(`write16 0x${ctrlq.toString(16)} at BAR4\\+0x${(0x3000 + 4 * ctrlq).toString(16)}`));
    });
});

describe('driver audit: virtio capabilities, planted', () => {
  const withVendorData = () => rng({ vendorData: [{ vendorId: 0x8086, data: Uint8Array.of(1, 2) }] });
  it(`${R.pciNoCapWrites.id}: the PCI_CFG window's bar, offset, length and data may be written`, async () => {
    const d = await withVendorData();
    // The PCI_CFG capability of a modern rng is at 0x84 (modern-device-layout.test.ts).
    await d.configWrite(0x84 + P.VIRTIO_PCI_CAP_BAR, 1, 4);
    await d.configWrite(0x84 + P.VIRTIO_PCI_CAP_OFFSET, 4, 0);
    await d.configWrite(0x84 + P.VIRTIO_PCI_CAP_LENGTH, 4, 4);
    await d.configWrite(0x84 + P.VIRTIO_PCI_CFG_CAP_DATA, 4, 0);
    assert.deepEqual(d.ids, []);
  });
  it(`${R.pciNoCapWrites.id}: a write into the vendor data capability`, async () => {
    const d = await withVendorData();
    // The vendor data capability follows PCI_CFG (20 bytes at 0x84): 0x98; vendor_id at +4.
    await d.configWrite(0x98 + P.VIRTIO_PCI_VNDR_DATA_VENDOR_ID, 2, 0x1af4);
    only(d, R.pciNoCapWrites.id);
    assert.match(d.audit.findings[0]!.detail, /config write16 0x1af4 at 0x9c: byte 4 of the vendor-cfg capability at 0x98/);
  });
  it(`${R.pciNoCapWrites.id}: a write into common-cfg's capability, or PCI_CFG's cfg_type`, async () => {
    const d = await rng();
    await d.configWrite(0x40 + P.VIRTIO_PCI_CAP_OFFSET, 4, 0x100);
    only(d, R.pciNoCapWrites.id);
    assert.match(d.audit.findings[0]!.detail, /byte 8 of the common-cfg capability at 0x40/);
    const e = await rng();
    await e.configWrite(0x84 + P.VIRTIO_PCI_CAP_CFG_TYPE, 1, 0xff);
    only(e, R.pciNoCapWrites.id);
    assert.match(e.audit.findings[0]!.detail, /config write8 0xff at 0x87: byte 3 of the pci-cfg capability at 0x84/);
  });
});
