/**
 * Family 'blk' (spec 5.2, 1.4 numbering): the offer and the configuration (5.2.4-5.2.5) here, the
 * requests (5.2.6) in blk-operation.ts, the driver-side statements in blk-driver.ts.
 */

import { featureSet, hasFeature } from '../../spec/features.js';
import {
  VIRTIO_BLK_CONFIG_UNUSED0,
  VIRTIO_BLK_CONFIG_UNUSED1,
  VIRTIO_BLK_CONFIG_WRITEBACK,
  VIRTIO_BLK_F_CONFIG_WCE,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_SECURE_ERASE,
  VIRTIO_BLK_F_ZONED,
} from '../../spec/blk.js';
import type { Statement } from '../statement.js';
import { need, needsOffered, offeredFeatures } from '../exchange.js';
import { blkDriverStatements } from './blk-driver.js';
import { blkOperationStatements } from './blk-operation.js';
import { deviceStatements } from './define.js';

const device = deviceStatements('blk');

/** Family 'blk' (see Family in ../statement.ts): spec 5.2, 1.4 numbering. */
export const blkStatements: readonly Statement[] = [
  device('flush-offered', '5.2.5.2', 'SHOULD', 'The device offers VIRTIO_BLK_F_FLUSH.', {
    check: {
      async run(ctx) {
        const f = await offeredFeatures(ctx);
        need(ctx, hasFeature(f, VIRTIO_BLK_F_FLUSH), `features 0x${f.toString(16)} without FLUSH`);
      },
    },
  }),
  device('config-wce-needs-flush', '5.2.5.2', 'MUST', 'A device offering VIRTIO_BLK_F_CONFIG_WCE offers VIRTIO_BLK_F_FLUSH too.', {
    check: {
      applies: (ctx) => needsOffered(ctx, VIRTIO_BLK_F_CONFIG_WCE, 'CONFIG_WCE'),
      async run(ctx) {
        const f = await offeredFeatures(ctx);
        need(ctx, hasFeature(f, VIRTIO_BLK_F_FLUSH), `CONFIG_WCE offered without FLUSH (features 0x${f.toString(16)})`);
      },
    },
  }),
  device(
    'writeback-zero-without-flush',
    '5.2.5.2',
    'MUST',
    'With VIRTIO_BLK_F_CONFIG_WCE negotiated and VIRTIO_BLK_F_FLUSH not, writeback reads 0 once FEATURES_OK is set.',
    {
      check: {
        // The legacy interface has no FEATURES_OK: its rule is 5.2.5.3's.
        via: ['modern'],
        applies: (ctx) => needsOffered(ctx, VIRTIO_BLK_F_CONFIG_WCE, 'CONFIG_WCE'),
        async run(ctx) {
          const driver = await ctx.openDriver({ ring: 'split' });
          const accepted = await driver.negotiate(featureSet(VIRTIO_BLK_F_CONFIG_WCE));
          ctx.note(`negotiated 0x${accepted.toString(16)}`);
          const writeback = await driver.readConfig(VIRTIO_BLK_CONFIG_WRITEBACK, 1);
          need(ctx, writeback === 0, `writeback reads ${writeback} after FEATURES_OK`);
        },
      },
    },
  ),
  device('unused0-zero', '5.2.5.2', 'MUST', 'The padding byte unused0 of the configuration reads 0.', {
    check: {
      async run(ctx) {
        const transport = await ctx.transport();
        const value = await transport.readConfig(VIRTIO_BLK_CONFIG_UNUSED0, 1);
        need(ctx, value === 0, `unused0 (config offset ${VIRTIO_BLK_CONFIG_UNUSED0}) reads 0x${value.toString(16)}`);
      },
    },
  }),
  device('unused1-zero', '5.2.5.2', 'MUST', 'The padding bytes unused1[3] of the configuration read 0.', {
    check: {
      // The configuration may end before unused1 unless a field after it is in use (QEMU's ends at 57).
      async applies(ctx) {
        const f = await offeredFeatures(ctx);
        return hasFeature(f, VIRTIO_BLK_F_SECURE_ERASE) || hasFeature(f, VIRTIO_BLK_F_ZONED)
          ? undefined
          : 'no field after unused1 is in use (neither SECURE_ERASE nor ZONED offered), so the configuration may end before it';
      },
      async run(ctx) {
        const transport = await ctx.transport();
        const bytes: number[] = [];
        for (let i = 0; i < 3; i++) bytes.push(await transport.readConfig(VIRTIO_BLK_CONFIG_UNUSED1 + i, 1));
        need(
          ctx,
          bytes.every((b) => b === 0),
          `unused1 reads ${bytes.join(' ')}`,
        );
      },
    },
  }),
  device('not-zoned-no-zoned-feature', '5.2.5.2', 'SHOULD NOT', 'A device that is not zoned does not offer VIRTIO_BLK_F_ZONED.', {
    uncheckable: 'whether the storage behind the device is zoned is not visible from the driver side except through the feature itself',
  }),
  device('legacy-no-zoned', '5.2.5.2', 'MUST NOT', 'Through the legacy interface the device does not offer VIRTIO_BLK_F_ZONED.', {
    check: {
      via: ['legacy'],
      async run(ctx) {
        const f = await offeredFeatures(ctx);
        need(ctx, !hasFeature(f, VIRTIO_BLK_F_ZONED), `the legacy interface offers ZONED (features 0x${f.toString(16)})`);
      },
    },
  }),
  device(
    'zoned-unaccepted-ha-none-zero-fields',
    '5.2.5.2',
    'SHOULD',
    'A host-aware or non-zoned device whose driver did not accept VIRTIO_BLK_F_ZONED proceeds with zeroed zoned fields.',
    {
      uncheckable:
        'needs a zoned device (VIRTIO_BLK_F_ZONED offered); none of the targets offers it, so the zoned statements are left to a later pass',
    },
  ),
  device(
    'zoned-hm-refuses-without-zoned',
    '5.2.5.2',
    'MUST',
    'A host-managed zoned device refuses FEATURES_OK when the driver did not accept VIRTIO_BLK_F_ZONED.',
    {
      uncheckable: 'needs a host-managed zoned device; none of the targets offers VIRTIO_BLK_F_ZONED',
    },
  ),
  device(
    'zoned-characteristics',
    '5.2.5.2',
    'MUST',
    'With VIRTIO_BLK_F_ZONED negotiated the zoned characteristics (model, zone_sectors, limits, unused2) are set as the spec defines.',
    {
      uncheckable: 'needs a zoned device; none of the targets offers VIRTIO_BLK_F_ZONED',
    },
  ),
  device(
    'legacy-writeback-kept-across-status',
    '5.2.5.3',
    'MUST NOT',
    'Through the legacy interface, setting a status bit other than DRIVER_OK (or DRIVER_OK with CONFIG_WCE accepted) does not change writeback.',
    {
      check: {
        via: ['legacy'],
        applies: (ctx) => needsOffered(ctx, VIRTIO_BLK_F_CONFIG_WCE, 'CONFIG_WCE'),
        async run(ctx) {
          const transport = await ctx.transport();
          await transport.reset();
          // The legacy driver may write writeback before DRIVER: make it the opposite of the reset value.
          const initial = await transport.readConfig(VIRTIO_BLK_CONFIG_WRITEBACK, 1);
          await transport.writeConfig(VIRTIO_BLK_CONFIG_WRITEBACK, 1, initial ^ 1);
          const set = await transport.readConfig(VIRTIO_BLK_CONFIG_WRITEBACK, 1);
          await transport.setStatus(1);
          await transport.setStatus(3);
          const after = await transport.readConfig(VIRTIO_BLK_CONFIG_WRITEBACK, 1);
          await transport.reset();
          need(ctx, after === set, `writeback ${set} before ACKNOWLEDGE|DRIVER, ${after} after`);
        },
      },
    },
  ),
  device(
    'legacy-writeback-kept-across-features',
    '5.2.5.3',
    'MUST NOT',
    'Through the legacy interface, writing the driver features (CONFIG_WCE without FLUSH) does not change writeback.',
    {
      check: {
        via: ['legacy'],
        applies: (ctx) => needsOffered(ctx, VIRTIO_BLK_F_CONFIG_WCE, 'CONFIG_WCE'),
        async run(ctx) {
          const transport = await ctx.transport();
          await transport.reset();
          await transport.setStatus(3);
          const before = await transport.readConfig(VIRTIO_BLK_CONFIG_WRITEBACK, 1);
          await transport.setDriverFeatures(featureSet(VIRTIO_BLK_F_CONFIG_WCE));
          const after = await transport.readConfig(VIRTIO_BLK_CONFIG_WRITEBACK, 1);
          await transport.reset();
          need(ctx, after === before, `writeback ${before} before the driver features were written, ${after} after`);
        },
      },
    },
  ),
  device(
    'legacy-native-endian',
    '5.2.4.1',
    'MUST',
    'Through the legacy interface, configuration and request fields are in the guest native byte order.',
    {
      uncheckable:
        "the guest's native byte order is not visible on the bus; on the little-endian hosts every target runs on it is the modern format, which the other checks use",
    },
  ),
  ...blkOperationStatements,
  ...blkDriverStatements,
];
