/**
 * Family 'pci-msix' (spec 4.1.5.1.2, 4.1.5.3, 4.1.5.4): the MSI-X table the device reports, mapping
 * and unmapping configuration and queue events to vectors (reading back the vector, NO_VECTOR when
 * unmapped, refused or reset), and silence for a queue mapped to NO_VECTOR. The mapping checks run
 * through both interfaces (the legacy header grows the vector registers with MSI-X on).
 */

import { openDevice } from '../bring-up.js';
import type { MsixCapability } from '../../bus/capabilities.js';
import {
  PCI_MSIX_ENTRY_DATA,
  PCI_MSIX_ENTRY_LOWER_ADDR,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_ENTRY_UPPER_ADDR,
  PCI_MSIX_ENTRY_VECTOR_CTRL,
} from '../../spec/pci.js';
import {
  VIRTIO_MSI_CONFIG_VECTOR,
  VIRTIO_MSI_NO_VECTOR,
  VIRTIO_MSI_QUEUE_VECTOR,
  VIRTIO_PCI_COMMON_MSIX,
  VIRTIO_PCI_COMMON_Q_MSIX,
  VIRTIO_PCI_COMMON_Q_SELECT,
  VIRTIO_PCI_QUEUE_SEL,
} from '../../spec/virtio-pci.js';
import type { DriverTransport } from '../../transport/pci/driver-transport.js';
import { commonCfg, enableMsix, hex, legacyHeader, msixOf, settle, transportOf } from '../pci-support.js';
import { usedBufferRig, usedBufferUnsupported } from '../used-buffer.js';
import type { Check, CheckContext, Statement } from '../statement.js';
import { auditedStatement } from '../audited-statement.js';
import { DRIVER_REQUIREMENTS as R } from '../../spec/driver-requirements.js';

/** 4.1.5.1.2.1: the vector counts a device should stay within. */
const MSIX_VECTORS_MIN = 2;
const MSIX_VECTORS_MAX = 0x800;
/** Vectors a mapping check tries at most: all of a small table, the first and last of a large one. */
const VECTOR_SAMPLE = 32;
/** Queues a mapping check tries at most. */
const QUEUE_SAMPLE = 4;

const base = { family: 'pci-msix', side: 'device' } as const;
const driver = { family: 'pci-msix', side: 'driver' } as const;

function sampleVectors(tableSize: number): number[] {
  const all = Array.from({ length: tableSize }, (_, v) => v);
  return tableSize <= 2 * VECTOR_SAMPLE ? all : [...all.slice(0, VECTOR_SAMPLE), ...all.slice(-VECTOR_SAMPLE)];
}

type Event = 'config' | 'queue';

/** Write `vector` for `event` (queue: every sampled queue) and return what each read back. */
async function map(t: DriverTransport, event: Event, vector: number): Promise<{ queue?: number; read: number }[]> {
  if (event === 'config') return [{ read: await t.setConfigVector(vector) }];
  const n = Math.min(await t.numQueues(), QUEUE_SAMPLE);
  const out: { queue?: number; read: number }[] = [];
  for (let queue = 0; queue < n; queue++) out.push({ queue, read: await t.setQueueVector(queue, vector) });
  return out;
}

const what = (event: Event, queue: number | undefined): string =>
  event === 'config' ? 'config_msix_vector' : `queue ${queue}'s queue_msix_vector`;

/** A check with MSI-X on (function-masked: nothing is delivered), after reset, ACKNOWLEDGE and DRIVER. */
function withMsix(body: (ctx: CheckContext, t: DriverTransport, msix: MsixCapability) => Promise<void>): Check {
  return {
    via: ['modern', 'legacy'],
    async applies(ctx: CheckContext) {
      const msix = await msixOf(ctx);
      return typeof msix === 'string' ? msix : undefined;
    },
    async run(ctx: CheckContext) {
      const msix = await msixOf(ctx);
      if (typeof msix === 'string') return;
      await openDevice(ctx);
      const t = await transportOf(ctx);
      const disable = await enableMsix(ctx, msix);
      try {
        await body(ctx, t, msix);
      } finally {
        await t.reset().catch(() => undefined);
        await disable();
      }
    },
  };
}

function mapAny(event: Event): Statement {
  return {
    ...base,
    id: `pci-msix/map-${event}-any-vector`,
    section: '4.1.5.1.2.1',
    level: 'MUST',
    text: `The device maps ${event === 'config' ? 'configuration change' : 'queue'} events to any vector of its table: ${event === 'config' ? 'config_msix_vector' : 'queue_msix_vector'} reads back each vector written.`,
    check: withMsix(async (ctx: CheckContext, t, msix) => {
      for (const v of sampleVectors(msix.tableSize))
        for (const { queue, read } of await map(t, event, v))
          ctx.require(read === v, `${what(event, queue)}: wrote ${v}, read ${hex(read)} (table size ${msix.tableSize})`);
    }),
  };
}

function unmap(event: Event): Statement {
  return {
    ...base,
    id: `pci-msix/unmap-${event}`,
    section: '4.1.5.1.2.1',
    level: 'MUST',
    text: `The device unmaps ${event === 'config' ? 'configuration change' : 'queue'} events: after NO_VECTOR is written the field reads NO_VECTOR.`,
    check: withMsix(async (ctx: CheckContext, t) => {
      await map(t, event, 0);
      for (const { queue, read } of await map(t, event, VIRTIO_MSI_NO_VECTOR))
        ctx.require(read === VIRTIO_MSI_NO_VECTOR, `${what(event, queue)}: wrote 0, then NO_VECTOR; read ${hex(read)}`);
    }),
  };
}

function resetUnmaps(event: Event): Statement {
  return {
    ...base,
    id: `pci-msix/reset-unmaps-${event}`,
    section: '4.1.5.1.2.1',
    level: 'MUST',
    text: `After a reset, ${event === 'config' ? 'the configuration change event is' : 'every queue event is'} unmapped (reads NO_VECTOR).`,
    check: withMsix(async (ctx: CheckContext, t) => {
      await map(t, event, 0);
      await t.reset();
      for (const { queue, read } of await readVectors(ctx, t, event))
        ctx.require(read === VIRTIO_MSI_NO_VECTOR, `${what(event, queue)} mapped to 0, device reset: reads ${hex(read)}`);
    }),
  };
}

/** Read the vector fields without writing them (the transports' setters write first, which would hide a kept mapping). */
async function readVectors(ctx: CheckContext, t: DriverTransport, event: Event): Promise<{ queue?: number; read: number }[]> {
  const legacy = t.kind === 'legacy';
  const regs = legacy ? await legacyHeader(ctx) : await commonCfg(ctx);
  if (event === 'config') return [{ read: await regs.read(legacy ? VIRTIO_MSI_CONFIG_VECTOR : VIRTIO_PCI_COMMON_MSIX, 2) }];
  const n = Math.min(await t.numQueues(), QUEUE_SAMPLE);
  const out: { queue?: number; read: number }[] = [];
  for (let queue = 0; queue < n; queue++) {
    await regs.write(legacy ? VIRTIO_PCI_QUEUE_SEL : VIRTIO_PCI_COMMON_Q_SELECT, 2, queue);
    out.push({ queue, read: await regs.read(legacy ? VIRTIO_MSI_QUEUE_VECTOR : VIRTIO_PCI_COMMON_Q_MSIX, 2) });
  }
  return out;
}

function refused(event: Event): Statement {
  return {
    ...base,
    id: `pci-msix/refused-${event}-reads-no-vector`,
    section: '4.1.5.1.2.1',
    level: 'MUST',
    text: `A ${event === 'config' ? 'configuration change' : 'queue'} mapping the device cannot make (a vector beyond its table) reads back NO_VECTOR.`,
    check: withMsix(async (ctx: CheckContext, t, msix) => {
      const beyond = msix.tableSize;
      for (const { queue, read } of await map(t, event, beyond))
        ctx.require(
          read === VIRTIO_MSI_NO_VECTOR,
          `${what(event, queue)}: wrote ${beyond} (table size ${msix.tableSize}), read ${hex(read)}`,
        );
    }),
  };
}

export const pciMsixStatements: readonly Statement[] = [
  {
    ...base,
    id: 'pci-msix/table-size-range',
    section: '4.1.5.1.2.1',
    level: 'SHOULD',
    text: 'A device with an MSI-X capability supports between 2 and 0x800 vectors.',
    check: {
      async applies(ctx: CheckContext) {
        const msix = await msixOf(ctx);
        return typeof msix === 'string' ? msix : undefined;
      },
      async run(ctx: CheckContext) {
        const msix = await msixOf(ctx);
        if (typeof msix === 'string') return;
        ctx.require(msix.tableSize >= MSIX_VECTORS_MIN && msix.tableSize <= MSIX_VECTORS_MAX, `table size ${msix.tableSize}`);
      },
    },
  },
  {
    ...base,
    id: 'pci-msix/table-size-reported',
    section: '4.1.5.1.2.1',
    level: 'MUST',
    text: 'The MSI-X Table Size reports the vectors the device has: the table and the PBA it implies lie inside their memory BARs.',
    check: {
      async applies(ctx: CheckContext) {
        const msix = await msixOf(ctx);
        return typeof msix === 'string' ? msix : undefined;
      },
      async run(ctx: CheckContext) {
        const msix = await msixOf(ctx);
        if (typeof msix === 'string') return;
        const { bars } = await ctx.probe();
        const regions = [
          ['table', msix.tableBar, msix.tableOffset, msix.tableSize * PCI_MSIX_ENTRY_SIZE],
          ['PBA', msix.pbaBar, msix.pbaOffset, Math.ceil(msix.tableSize / 64) * 8],
        ] as const;
        for (const [name, index, offset, length] of regions) {
          const bar = bars.find((b) => b.index === index && b.kind === 'memory');
          ctx.require(
            bar !== undefined && offset + length <= bar.size,
            `${msix.tableSize} vectors: ${name} [${hex(offset)}, +${hex(length)}) in BAR${index} ${bar === undefined ? '(no memory BAR)' : `of size ${hex(bar.size)}`}`,
          );
        }
      },
    },
  },
  {
    ...base,
    id: 'pci-msix/table-size-restrained',
    section: '4.1.5.1.2.1',
    level: 'SHOULD',
    text: 'The device reports a Table Size that is useful for performance, no larger.',
    uncheckable: 'what helps performance is a judgement about the platform, not an observable fact',
  },
  mapAny('config'),
  mapAny('queue'),
  unmap('config'),
  unmap('queue'),
  resetUnmaps('config'),
  resetUnmaps('queue'),
  {
    ...base,
    id: 'pci-msix/map-fails-only-if-impossible',
    section: '4.1.5.1.2.1',
    level: 'SHOULD NOT',
    text: 'The device refuses a mapping only when it truly cannot make it.',
    uncheckable: 'whether a refusal was avoidable is internal to the device; refusals of vectors inside the table fail map-*-any-vector',
  },
  refused('config'),
  refused('queue'),
  {
    ...base,
    id: 'pci-msix/no-vector-queue-silent',
    section: '4.1.5.3.1',
    level: 'MUST NOT',
    text: "With MSI-X enabled and a queue's vector NO_VECTOR, the device sends no interrupt for that queue.",
    check: {
      via: ['modern', 'legacy'],
      async applies(ctx: CheckContext) {
        const msix = await msixOf(ctx);
        if (typeof msix === 'string') return msix;
        if (ctx.bus.msiMessage(ctx.fn, 0) === undefined) return 'the bus cannot deliver MSI messages';
        return usedBufferUnsupported(ctx);
      },
      async run(ctx: CheckContext) {
        const msix = await msixOf(ctx);
        if (typeof msix === 'string') return;
        const table = await msixTable(ctx, msix);
        // Every entry aimed at the bus's message for its vector, unmasked: any interrupt would be seen.
        for (let v = 0; v < Math.min(msix.tableSize, VECTOR_SAMPLE); v++) {
          const m = ctx.bus.msiMessage(ctx.fn, v)!;
          const entry = table + v * PCI_MSIX_ENTRY_SIZE;
          await ctx.bus.memWrite(entry + PCI_MSIX_ENTRY_LOWER_ADDR, 4, m.address >>> 0);
          await ctx.bus.memWrite(entry + PCI_MSIX_ENTRY_UPPER_ADDR, 4, Math.floor(m.address / 2 ** 32));
          await ctx.bus.memWrite(entry + PCI_MSIX_ENTRY_DATA, 4, m.data);
          await ctx.bus.memWrite(entry + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 0);
        }
        const disable = await enableMsix(ctx, msix, true);
        try {
          const rig = await usedBufferRig(ctx, {
            async beforeEnable(t, queue) {
              await t.setConfigVector(VIRTIO_MSI_NO_VECTOR);
              const read = await t.setQueueVector(queue, VIRTIO_MSI_NO_VECTOR);
              ctx.require(read === VIRTIO_MSI_NO_VECTOR, `queue ${queue}: wrote NO_VECTOR, read ${hex(read)}`);
            },
          });
          try {
            ctx.require(await rig.use(), `queue ${rig.queue}: the device did not use the buffer within ${ctx.timeoutMs} ms`);
            await settle();
            const sent = rig.events.filter((e) => e.kind === 'msi' || e.asserted);
            ctx.require(sent.length === 0, `queue ${rig.queue} on NO_VECTOR; the device sent ${JSON.stringify(sent)}`);
          } finally {
            await rig.close();
          }
        } finally {
          await disable();
        }
      },
    },
  },
  {
    ...base,
    id: 'pci-msix/no-vector-config-silent',
    section: '4.1.5.4.1',
    level: 'MUST NOT',
    text: 'With MSI-X enabled and config_msix_vector NO_VECTOR, the device sends no interrupt for configuration changes.',
    uncheckable: 'a configuration change cannot be caused through the transport alone; it is device-type specific',
  },
  // Driver side, for the audit.
  {
    ...driver,
    id: 'pci-msix/driver-any-table-size',
    section: '4.1.5.1.2.2',
    level: 'MUST',
    text: 'The driver works with any MSI-X Table Size from 0 to 0x7FF.',
    uncheckable: 'a driver that gives up on a table size simply does not bind; the audit cannot see it',
  },
  auditedStatement('pci-msix', R.msixVectorInTable),
  auditedStatement('pci-msix', R.msixVerifyVector),
  {
    ...driver,
    id: 'pci-msix/driver-shared-interrupt',
    section: '4.1.5.4.2',
    level: 'MUST',
    text: 'The driver handles one interrupt that stands for both a configuration change and used buffers.',
    uncheckable: 'handling is internal to the driver; our devices could send such an interrupt but the audit sees only later accesses',
  },
];

/** The MSI-X table's bus address (in its memory BAR). */
async function msixTable(ctx: CheckContext, msix: MsixCapability): Promise<number> {
  const bar = (await ctx.probe()).bars.find((b) => b.index === msix.tableBar && b.kind === 'memory');
  ctx.require(bar !== undefined, `MSI-X table BAR${msix.tableBar} is not a memory BAR`);
  return bar.base + msix.tableOffset;
}
