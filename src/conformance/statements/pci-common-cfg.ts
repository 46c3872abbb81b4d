/**
 * Family 'pci-common-cfg' (spec 4.1.3.2, 4.1.4.3): the common configuration structure, its
 * capability and how its fields behave (feature windows, reset, queue fields, queue reset, the
 * administration queue range).
 */

import { openDevice, featuresOk, probeQueue } from '../bring-up.js';
import { DeviceFaultError } from '../../errors.js';
import { VIRTIO_F_ADMIN_VQ, VIRTIO_F_RING_RESET } from '../../spec/features.js';
import { VIRTIO_CONFIG_S_DRIVER_OK } from '../../spec/status.js';
import { VIRTIO_PCI_COMMON_CFG_ALIGN } from '../../spec/virtio-pci-probe.js';
import {
  VIRTIO_PCI_CAP_COMMON_CFG,
  VIRTIO_PCI_COMMON_ADM_Q_IDX,
  VIRTIO_PCI_COMMON_ADM_Q_NUM,
  VIRTIO_PCI_COMMON_GF,
  VIRTIO_PCI_COMMON_GFSELECT,
  VIRTIO_PCI_COMMON_NUMQ,
  VIRTIO_PCI_COMMON_Q_DESCHI,
  VIRTIO_PCI_COMMON_Q_DESCLO,
  VIRTIO_PCI_COMMON_Q_ENABLE,
  VIRTIO_PCI_COMMON_Q_RESET,
  VIRTIO_PCI_COMMON_Q_SELECT,
  VIRTIO_PCI_COMMON_Q_SIZE,
} from '../../spec/virtio-pci.js';
import { pollUntilZero } from '../../transport/pci/driver-transport.js';
import { capsOfType, commonCfg, deviceFeatureWindow, hex, modernOnly, offersFeature, type Registers, transportOf } from '../pci-support.js';
import { auditedStatement } from '../audited-statement.js';
import { DRIVER_REQUIREMENTS as R } from '../../spec/driver-requirements.js';
import type { CheckContext, Statement } from '../statement.js';

/** Queues whose fields a check walks at most (num_queues is the device's to choose, up to 65535). */
const QUEUE_WALK_LIMIT = 64;

const base = { family: 'pci-common-cfg', side: 'device' } as const;

async function offers(ctx: CheckContext, bit: number): Promise<string | undefined> {
  return (await modernOnly(ctx)) ?? ((await offersFeature(ctx, bit)) ? undefined : `the device does not offer feature bit ${bit}`);
}

/** Queue 0 set up and enabled with VIRTIO_F_RING_RESET negotiated; the queue_reset reads along the way. */
async function ringResetQueue(ctx: CheckContext): Promise<{ common: Registers; afterReset: number; afterEnable: number; free(): void }> {
  const accepted = await featuresOk(ctx, 1n << BigInt(VIRTIO_F_RING_RESET));
  ctx.require(accepted, 'the device cleared FEATURES_OK for VERSION_1 and RING_RESET');
  const common = await commonCfg(ctx);
  await common.write(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
  const afterReset = await common.read(VIRTIO_PCI_COMMON_Q_RESET, 2);
  const q = await probeQueue(ctx, 0, false);
  const t = await transportOf(ctx);
  await t.enableQueue(0);
  // A queue reset is for a live device (2.6.1): DRIVER_OK first.
  await t.setStatus((await t.getStatus()) | VIRTIO_CONFIG_S_DRIVER_OK);
  await common.write(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
  const afterEnable = await common.read(VIRTIO_PCI_COMMON_Q_RESET, 2);
  return { common, afterReset, afterEnable, free: () => q.destroy() };
}

export const pciCommonCfgStatements: readonly Statement[] = [
  {
    ...base,
    id: 'pci-common-cfg/queue-desc-halves-independent',
    section: '4.1.3.2',
    level: 'MUST',
    text: 'The low and high 32-bit halves of a 64-bit field can be written and read independently (checked on queue_desc; the device-specific 64-bit fields are read-only).',
    check: {
      applies: modernOnly,
      async run(ctx: CheckContext) {
        const accepted = await featuresOk(ctx);
        ctx.require(accepted, 'the device cleared FEATURES_OK for VERSION_1 alone');
        const common = await commonCfg(ctx);
        await common.write(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
        await common.write(VIRTIO_PCI_COMMON_Q_DESCLO, 4, 0x1000);
        await common.write(VIRTIO_PCI_COMMON_Q_DESCHI, 4, 0x1);
        await common.write(VIRTIO_PCI_COMMON_Q_DESCLO, 4, 0x2000);
        const hi = await common.read(VIRTIO_PCI_COMMON_Q_DESCHI, 4);
        await common.write(VIRTIO_PCI_COMMON_Q_DESCHI, 4, 0x2);
        const lo = await common.read(VIRTIO_PCI_COMMON_Q_DESCLO, 4);
        ctx.require(hi === 0x1 && lo === 0x2000, `wrote lo 0x1000, hi 0x1, lo 0x2000: hi read ${hex(hi)}; then hi 0x2: lo read ${hex(lo)}`);
      },
    },
  },
  {
    ...base,
    id: 'pci-common-cfg/common-cfg-present',
    section: '4.1.4.3.1',
    level: 'MUST',
    text: 'The device has at least one VIRTIO_PCI_CAP_COMMON_CFG capability.',
    check: {
      applies: modernOnly,
      async run(ctx: CheckContext) {
        ctx.require((await capsOfType(ctx, VIRTIO_PCI_CAP_COMMON_CFG)).length > 0, 'no common-cfg capability');
      },
    },
  },
  {
    ...base,
    id: 'pci-common-cfg/offset-aligned',
    section: '4.1.4.3.1',
    level: 'MUST',
    text: "The common configuration structure's offset is 4-byte aligned.",
    check: {
      applies: modernOnly,
      async run(ctx: CheckContext) {
        const bad = (await capsOfType(ctx, VIRTIO_PCI_CAP_COMMON_CFG)).filter((c) => c.offset % VIRTIO_PCI_COMMON_CFG_ALIGN !== 0);
        ctx.require(bad.length === 0, bad.map((c) => `common-cfg cap at ${hex(c.capOffset)}: offset ${hex(c.offset)}`).join('; '));
      },
    },
  },
  {
    ...base,
    id: 'pci-common-cfg/device-feature-window',
    section: '4.1.4.3.1',
    level: 'MUST',
    text: 'device_feature shows the feature bits from device_feature_select * 32 on, for whatever select was written (window 1 holds VERSION_1).',
    check: {
      applies: modernOnly,
      async run(ctx: CheckContext) {
        const common = await commonCfg(ctx);
        const w0 = await deviceFeatureWindow(common, 0);
        const w1 = await deviceFeatureWindow(common, 1);
        const again = await deviceFeatureWindow(common, 0);
        // VERSION_1 (bit 32) is offered by every device through the modern interface (6.1).
        ctx.require((w1 & 1) === 1 && again === w0, `select 0: ${hex(w0)}, select 1: ${hex(w1)}, select 0 again: ${hex(again)}`);
      },
    },
  },
  {
    ...base,
    id: 'pci-common-cfg/driver-feature-presented',
    section: '4.1.4.3.1',
    level: 'MUST',
    text: 'driver_feature shows the valid bits the driver wrote, in the window of driver_feature_select.',
    check: {
      applies: modernOnly,
      async run(ctx: CheckContext) {
        await openDevice(ctx);
        const common = await commonCfg(ctx);
        const offered = [await deviceFeatureWindow(common, 0), await deviceFeatureWindow(common, 1)];
        for (const [select, word] of offered.entries()) {
          await common.write(VIRTIO_PCI_COMMON_GFSELECT, 4, select);
          await common.write(VIRTIO_PCI_COMMON_GF, 4, word);
        }
        for (const [select, word] of offered.entries()) {
          await common.write(VIRTIO_PCI_COMMON_GFSELECT, 4, select);
          const read = (await common.read(VIRTIO_PCI_COMMON_GF, 4)) >>> 0;
          ctx.require((read & word) >>> 0 === word, `driver_feature window ${select}: wrote ${hex(word)} (all offered), read ${hex(read)}`);
        }
      },
    },
  },
  {
    ...base,
    id: 'pci-common-cfg/config-generation-changes',
    section: '4.1.4.3.1',
    level: 'MUST',
    text: 'config_generation changes once the driver has read a device-specific configuration value that changed since the last read.',
    uncheckable:
      'a configuration change cannot be caused through the transport; the device-specific ones are checked in family device-config',
  },
  {
    ...base,
    id: 'pci-common-cfg/reset-reads-zero',
    section: '4.1.4.3.1',
    level: 'MUST',
    text: 'Writing 0 to device_status resets the device, which then reads 0 there.',
    check: {
      applies: modernOnly,
      async run(ctx: CheckContext) {
        await openDevice(ctx);
        const t = await transportOf(ctx);
        await t.setStatus(0);
        try {
          await pollUntilZero(() => t.getStatus(), ctx.timeoutMs, 'device_status');
        } catch (error) {
          if (!(error instanceof DeviceFaultError)) throw error;
          ctx.require(false, `device_status still ${hex(await t.getStatus())} ${ctx.timeoutMs} ms after writing 0`);
        }
      },
    },
  },
  {
    ...base,
    id: 'pci-common-cfg/queue-enable-zero-on-reset',
    section: '4.1.4.3.1',
    level: 'MUST',
    text: 'After a reset queue_enable reads 0.',
    check: {
      applies: modernOnly,
      async run(ctx: CheckContext) {
        const accepted = await featuresOk(ctx);
        ctx.require(accepted, 'the device cleared FEATURES_OK for VERSION_1 alone');
        const q = await probeQueue(ctx, 0, false);
        try {
          const t = await transportOf(ctx);
          await t.enableQueue(0);
          await t.reset();
          const common = await commonCfg(ctx);
          await common.write(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
          const enable = await common.read(VIRTIO_PCI_COMMON_Q_ENABLE, 2);
          ctx.require(enable === 0, `queue 0 enabled, device reset: queue_enable reads ${enable}`);
        } finally {
          q.destroy();
        }
      },
    },
  },
  {
    ...base,
    id: 'pci-common-cfg/queue-reset-zero-on-reset',
    section: '4.1.4.3.1',
    level: 'MUST',
    text: 'With VIRTIO_F_RING_RESET negotiated, queue_reset reads 0 after a device reset.',
    check: {
      applies: (ctx) => offers(ctx, VIRTIO_F_RING_RESET),
      async run(ctx: CheckContext) {
        const r = await ringResetQueue(ctx);
        r.free();
        ctx.require(r.afterReset === 0, `queue 0's queue_reset reads ${r.afterReset} after reset and FEATURES_OK`);
      },
    },
  },
  {
    ...base,
    id: 'pci-common-cfg/queue-reset-zero-after-enable',
    section: '4.1.4.3.1',
    level: 'MUST',
    text: 'With VIRTIO_F_RING_RESET negotiated, queue_reset reads 0 once the queue is enabled (checked with the device live).',
    check: {
      applies: (ctx) => offers(ctx, VIRTIO_F_RING_RESET),
      async run(ctx: CheckContext) {
        const r = await ringResetQueue(ctx);
        r.free();
        ctx.require(r.afterEnable === 0, `queue 0's queue_reset reads ${r.afterEnable} after queue_enable = 1`);
      },
    },
  },
  {
    ...base,
    id: 'pci-common-cfg/queue-reset-completes',
    section: '4.1.4.3.1',
    level: 'MUST',
    text: 'Writing 1 to queue_reset resets the queue; once done, queue_reset and queue_enable both read 0.',
    check: {
      applies: (ctx) => offers(ctx, VIRTIO_F_RING_RESET),
      async run(ctx: CheckContext) {
        const r = await ringResetQueue(ctx);
        try {
          await r.common.write(VIRTIO_PCI_COMMON_Q_RESET, 2, 1);
          try {
            await pollUntilZero(() => r.common.read(VIRTIO_PCI_COMMON_Q_RESET, 2), ctx.timeoutMs, 'queue_reset');
          } catch (error) {
            if (!(error instanceof DeviceFaultError)) throw error;
            ctx.require(false, `queue_reset still reads non-zero ${ctx.timeoutMs} ms after writing 1`);
          }
          const enable = await r.common.read(VIRTIO_PCI_COMMON_Q_ENABLE, 2);
          ctx.require(enable === 0, `queue reset done (queue_reset 0) but queue_enable reads ${enable}`);
        } finally {
          r.free();
        }
      },
    },
  },
  {
    ...base,
    id: 'pci-common-cfg/queue-reset-ongoing-reads-one',
    section: '4.1.4.3.1',
    level: 'MUST',
    text: 'While a queue reset is in progress, queue_reset reads 1.',
    uncheckable: "how long a queue reset takes is the device's; a device that finishes at once never shows the in-progress state",
  },
  {
    ...base,
    id: 'pci-common-cfg/missing-queue-size-zero',
    section: '4.1.4.3.1',
    level: 'MUST',
    text: 'queue_size reads 0 when queue_select names a queue the device does not have (here: index num_queues).',
    check: {
      applies: modernOnly,
      async run(ctx: CheckContext) {
        await openDevice(ctx);
        const common = await commonCfg(ctx);
        const n = await common.read(VIRTIO_PCI_COMMON_NUMQ, 2);
        await common.write(VIRTIO_PCI_COMMON_Q_SELECT, 2, n);
        const size = await common.read(VIRTIO_PCI_COMMON_Q_SIZE, 2);
        ctx.require(size === 0, `num_queues ${n}; queue_select ${n}: queue_size reads ${size}`);
      },
    },
  },
  {
    ...base,
    id: 'pci-common-cfg/queue-size-power-of-two',
    section: '4.1.4.3.1',
    level: 'MUST',
    text: 'Without VIRTIO_F_RING_PACKED negotiated, every queue_size reads 0 or a power of 2.',
    check: {
      applies: modernOnly,
      async run(ctx: CheckContext) {
        await openDevice(ctx);
        const common = await commonCfg(ctx);
        const n = Math.min(await common.read(VIRTIO_PCI_COMMON_NUMQ, 2), QUEUE_WALK_LIMIT);
        for (let q = 0; q < n; q++) {
          await common.write(VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
          const size = await common.read(VIRTIO_PCI_COMMON_Q_SIZE, 2);
          ctx.require((size & (size - 1)) === 0, `queue ${q}: queue_size ${size}`);
        }
      },
    },
  },
  {
    ...base,
    id: 'pci-common-cfg/admin-queue-index',
    section: '4.1.4.3.1',
    level: 'MUST',
    text: 'With VIRTIO_F_ADMIN_VQ negotiated, admin_queue_index is at least num_queues.',
    check: {
      applies: (ctx) => offers(ctx, VIRTIO_F_ADMIN_VQ),
      async run(ctx: CheckContext) {
        const { n, index } = await adminRange(ctx);
        ctx.require(index >= n, `num_queues ${n}, admin_queue_index ${index}`);
      },
    },
  },
  {
    ...base,
    id: 'pci-common-cfg/admin-queue-num',
    section: '4.1.4.3.1',
    level: 'MUST',
    text: 'With VIRTIO_F_ADMIN_VQ negotiated, admin_queue_num is at most 0x10000 - admin_queue_index.',
    check: {
      applies: (ctx) => offers(ctx, VIRTIO_F_ADMIN_VQ),
      async run(ctx: CheckContext) {
        const { index, num } = await adminRange(ctx);
        ctx.require(num <= 0x10000 - index, `admin_queue_index ${index}, admin_queue_num ${num}`);
      },
    },
  },
  // Driver side (4.1.4.3.2): audited.
  ...[
    R.commonReadOnly,
    R.commonQueueSizeNonzero,
    R.commonQueueSizePow2,
    R.commonConfigureBeforeEnable,
    R.commonResetWait,
    R.commonQueueEnableZero,
    R.commonQueueResetWait,
  ].map((r) => auditedStatement('pci-common-cfg', r)),
  auditedStatement('pci-common-cfg', R.commonAdminQueueRange),
];

/** num_queues and the administration queue range with VIRTIO_F_ADMIN_VQ negotiated. */
async function adminRange(ctx: CheckContext): Promise<{ n: number; index: number; num: number }> {
  const accepted = await featuresOk(ctx, 1n << BigInt(VIRTIO_F_ADMIN_VQ));
  ctx.require(accepted, 'the device cleared FEATURES_OK for VERSION_1 and ADMIN_VQ');
  const common = await commonCfg(ctx);
  return {
    n: await common.read(VIRTIO_PCI_COMMON_NUMQ, 2),
    index: await common.read(VIRTIO_PCI_COMMON_ADM_Q_IDX, 2),
    num: await common.read(VIRTIO_PCI_COMMON_ADM_Q_NUM, 2),
  };
}
