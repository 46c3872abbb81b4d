/**
 * Family 'pci-cfg-access' (spec 4.1.4.9): the VIRTIO_PCI_CAP_PCI_CFG window, through which
 * configuration space accesses reach the structures in the BARs. Each width is its own statement:
 * a device can get one width wrong and the others right. The window is aimed at the common
 * configuration structure, whose fields the check compares with a direct access.
 */

import { openDevice } from '../bring-up.js';
import type { AccessSize } from '../../memory/access-size.js';
import { VIRTIO_CONFIG_S_ACKNOWLEDGE } from '../../spec/status.js';
import {
  VIRTIO_PCI_CAP_BAR,
  VIRTIO_PCI_CAP_LENGTH,
  VIRTIO_PCI_CAP_OFFSET,
  VIRTIO_PCI_CAP_PCI_CFG,
  VIRTIO_PCI_CFG_CAP_DATA,
  VIRTIO_PCI_CFG_CAP_SIZE,
  VIRTIO_PCI_COMMON_DF,
  VIRTIO_PCI_COMMON_DFSELECT,
  VIRTIO_PCI_COMMON_GFSELECT,
  VIRTIO_PCI_COMMON_NUMQ,
  VIRTIO_PCI_COMMON_Q_SELECT,
  VIRTIO_PCI_COMMON_STATUS,
} from '../../spec/virtio-pci.js';
import { capsOfType, commonCfg, hex, modernOnly, modernProbe, type Registers, transportOf } from '../pci-support.js';
import type { CheckContext, Statement } from '../statement.js';
import { NOT_AUDITED_YET } from '../audited-statement.js';

const base = { family: 'pci-cfg-access', side: 'device' } as const;

/** The window: aim it at [common + offset, +size) and access pci_cfg_data. */
interface Window {
  read(offset: number, size: AccessSize): Promise<number>;
  write(offset: number, size: AccessSize, value: number): Promise<void>;
}

async function window(ctx: CheckContext): Promise<{ window: Window; common: Registers }> {
  const caps = (await capsOfType(ctx, VIRTIO_PCI_CAP_PCI_CFG)).filter((c) => c.capLen >= VIRTIO_PCI_CFG_CAP_SIZE);
  ctx.require(caps.length > 0, 'no pci-cfg capability with room for pci_cfg_data');
  const cap = caps[0]!.capOffset;
  const common = (await modernProbe(ctx)).layout.common;
  const aim = async (offset: number, size: AccessSize): Promise<void> => {
    await ctx.bus.configWrite(ctx.fn, cap + VIRTIO_PCI_CAP_BAR, 1, common.bar);
    await ctx.bus.configWrite(ctx.fn, cap + VIRTIO_PCI_CAP_LENGTH, 4, size);
    await ctx.bus.configWrite(ctx.fn, cap + VIRTIO_PCI_CAP_OFFSET, 4, common.offset + offset);
  };
  return {
    common: await commonCfg(ctx),
    window: {
      async read(offset, size) {
        await aim(offset, size);
        return ctx.bus.configRead(ctx.fn, cap + VIRTIO_PCI_CFG_CAP_DATA, size);
      },
      async write(offset, size, value) {
        await aim(offset, size);
        await ctx.bus.configWrite(ctx.fn, cap + VIRTIO_PCI_CFG_CAP_DATA, size, value);
      },
    },
  };
}

/** A read through the window of `size` bytes of the field at `offset`, compared with a direct read; `prepare` gives it a known value. */
function readStatement(size: AccessSize, field: string, offset: number, prepare: (common: Registers) => Promise<void>): Statement {
  return {
    ...base,
    id: `pci-cfg-access/read-${size * 8}`,
    section: '4.1.4.9.1',
    level: 'MUST',
    text: `A ${size}-byte read of pci_cfg_data performs a ${size}-byte read at cap.offset in BAR cap.bar and returns its bytes (here: ${field}).`,
    check: {
      applies: modernOnly,
      async run(ctx: CheckContext) {
        await openDevice(ctx);
        const { window: w, common } = await window(ctx);
        await prepare(common);
        const direct = (await common.read(offset, size)) >>> 0;
        const through = (await w.read(offset, size)) >>> 0;
        ctx.require(through === direct, `${field}: ${hex(through)} through the window, ${hex(direct)} read directly`);
      },
    },
  };
}

/** A write through the window of `size` bytes to the field at `offset`, read back directly. */
function writeStatement(size: AccessSize, field: string, offset: number, value: number, fromReset = false): Statement {
  return {
    ...base,
    id: `pci-cfg-access/write-${size * 8}`,
    section: '4.1.4.9.1',
    level: 'MUST',
    text: `A ${size}-byte write of pci_cfg_data performs a ${size}-byte write of its bytes at cap.offset in BAR cap.bar (here: ${field}).`,
    check: {
      applies: modernOnly,
      async run(ctx: CheckContext) {
        // device_status is written from the reset state (0), so that the value written is news to it.
        if (fromReset) await (await transportOf(ctx)).reset();
        else await openDevice(ctx);
        const { window: w, common } = await window(ctx);
        await w.write(offset, size, value);
        const direct = await common.read(offset, size);
        ctx.require(direct === value, `wrote ${hex(value)} to ${field} through the window; it reads ${hex(direct)} directly`);
      },
    },
  };
}

export const pciCfgAccessStatements: readonly Statement[] = [
  {
    ...base,
    id: 'pci-cfg-access/pci-cfg-present',
    section: '4.1.4.9.1',
    level: 'MUST',
    text: 'The device has at least one VIRTIO_PCI_CAP_PCI_CFG capability.',
    check: {
      applies: modernOnly,
      async run(ctx: CheckContext) {
        ctx.require((await capsOfType(ctx, VIRTIO_PCI_CAP_PCI_CFG)).length > 0, 'no pci-cfg capability');
      },
    },
  },
  readStatement(4, 'device_feature window 1', VIRTIO_PCI_COMMON_DF, (c) => c.write(VIRTIO_PCI_COMMON_DFSELECT, 4, 1)),
  readStatement(2, 'num_queues', VIRTIO_PCI_COMMON_NUMQ, async () => undefined),
  readStatement(1, 'device_status', VIRTIO_PCI_COMMON_STATUS, async () => undefined),
  writeStatement(4, 'driver_feature_select', VIRTIO_PCI_COMMON_GFSELECT, 1),
  writeStatement(2, 'queue_select', VIRTIO_PCI_COMMON_Q_SELECT, 1),
  writeStatement(1, 'device_status', VIRTIO_PCI_COMMON_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE, true),
  {
    ...base,
    side: 'driver',
    id: 'pci-cfg-access/driver-aligned-offset',
    section: '4.1.4.9.2',
    level: 'MUST NOT',
    text: 'The driver does not write a cap.offset that is not a multiple of cap.length.',
    uncheckable: NOT_AUDITED_YET,
  },
  {
    ...base,
    side: 'driver',
    id: 'pci-cfg-access/driver-window-inside-structure',
    section: '4.1.4.9.2',
    level: 'MUST NOT',
    text: 'The driver accesses pci_cfg_data only while cap.bar, cap.offset and cap.length address bytes inside a structure another virtio capability names.',
    uncheckable: NOT_AUDITED_YET,
  },
];
