/**
 * Target (b): arbitrary sequences of config-space and BAR accesses (any width, offset and value)
 * against the virtio-pci function of every device type, in each transport mode (modern,
 * transitional, legacy; with or without MSI-X), interleaved with notifies, chains the guest makes
 * available, host input and full driver-style initialisations through the modern capabilities or
 * the legacy header (so the data path is reached, not only the registers).
 *
 * Guarantees checked: no PciFunction access ever throws; the device writes guest memory only in
 * used rings and guest-declared writable buffers; writes with queue_select beyond num_queues change
 * no queue, and the selected absent queue reads as absent (size 0, not enabled, no rings); a recorded fault always shows as
 * DEVICE_NEEDS_RESET; a reset (status 0) always returns status, queues and ISR to 0 and a fresh
 * initialisation afterwards reaches DRIVER_OK; interrupts per access stay bounded.
 */

import { ArrayGuestMemory, splitU64 } from '../../src/memory/guest-memory.js';
import type { AccessSize } from '../../src/memory/access-size.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, bit } from '../../src/spec/features.js';
import { PCI_BASE_ADDRESS_0, PCI_COMMAND, PCI_COMMAND_IO, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY } from '../../src/spec/pci.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
} from '../../src/spec/status.js';
import {
  VIRTIO_PCI_CAP_BAR,
  VIRTIO_PCI_CAP_LENGTH,
  VIRTIO_PCI_CAP_OFFSET,
  VIRTIO_PCI_CFG_CAP_DATA,
  VIRTIO_PCI_COMMON_CFGGENERATION,
  VIRTIO_PCI_COMMON_DF,
  VIRTIO_PCI_COMMON_DFSELECT,
  VIRTIO_PCI_COMMON_GF,
  VIRTIO_PCI_COMMON_GFSELECT,
  VIRTIO_PCI_COMMON_MSIX,
  VIRTIO_PCI_COMMON_NUMQ,
  VIRTIO_PCI_COMMON_Q_AVAILHI,
  VIRTIO_PCI_COMMON_Q_AVAILLO,
  VIRTIO_PCI_COMMON_Q_DESCHI,
  VIRTIO_PCI_COMMON_Q_DESCLO,
  VIRTIO_PCI_COMMON_Q_ENABLE,
  VIRTIO_PCI_COMMON_Q_MSIX,
  VIRTIO_PCI_COMMON_Q_NDATA,
  VIRTIO_PCI_COMMON_Q_NOFF,
  VIRTIO_PCI_COMMON_Q_RESET,
  VIRTIO_PCI_COMMON_Q_SELECT,
  VIRTIO_PCI_COMMON_Q_SIZE,
  VIRTIO_PCI_COMMON_Q_USEDHI,
  VIRTIO_PCI_COMMON_Q_USEDLO,
  VIRTIO_PCI_COMMON_STATUS,
  VIRTIO_MSI_NO_VECTOR,
  VIRTIO_PCI_GUEST_FEATURES,
  VIRTIO_PCI_HOST_FEATURES,
  VIRTIO_PCI_ISR,
  VIRTIO_PCI_QUEUE_ADDR_SHIFT,
  VIRTIO_PCI_QUEUE_NOTIFY,
  VIRTIO_PCI_QUEUE_NUM,
  VIRTIO_PCI_QUEUE_PFN,
  VIRTIO_PCI_QUEUE_SEL,
  VIRTIO_PCI_STATUS,
} from '../../src/spec/virtio-pci.js';
import {
  MODERN_BAR,
  MODERN_COMMON_OFFSET,
  MODERN_DEVICE_OFFSET,
  MODERN_ISR_OFFSET,
  MODERN_NOTIFY_OFFSET,
} from '../../src/transport/pci/modern-device.js';
import { MODERN_NOTIFY_OFF_MULTIPLIER } from '../../src/transport/pci/notify-cfg.js';
import { LEGACY_BAR } from '../../src/transport/pci/legacy-device.js';
import { VirtioPciFunction, type VirtioPciMode } from '../../src/transport/pci/virtio-pci-function.js';
import { GuardedMemory } from '../../src/testing/guarded-memory.js';
import { MockQueue } from '../../src/testing/mock-queue.js';
import { GuaranteeViolation, check, expectTyped } from '../engine/guarantees.js';
import { FuzzInput, InputWriter } from '../engine/input.js';
import type { MutationShape } from '../engine/mutator.js';
import type { Seed } from '../engine/target.js';
import { ZOO_KINDS, ZOO_QUEUE_SIZE, makeZooDevice } from '../harness/device-zoo.js';
import { WriteAllowance } from '../harness/write-allowance.js';

export const description = 'modern virtio-pci function of every device type: config/BAR accesses of any width, notifies, chains, resets';

const MEM_BASE = 0x10_0000;
/** One region per queue for its MockQueue; a legacy ring area takes two (2.7.2: used ring page-aligned). */
const REGION = 0x1000;
const REGIONS = 12;
const IO_BASE = 0xc000;
/** The first input byte picks the device (byte % 7) and, from byte / 7, the mode and MSI-X vectors. */
const MODES: readonly VirtioPciMode[] = ['modern', 'transitional', 'legacy'];
const MSIX_VECTORS = [0, 3] as const;
const BAR4_BASE = 0x8_0000_0000;
/** op u8, width u8, offset u16, value u32. */
const RECORD = 8;
const MAX_OPS = 64;
/** Interrupt events one access may cause: one per used element per queue at most, plus config. */
const MAX_IRQS_PER_ACCESS = 4 * ZOO_QUEUE_SIZE * REGIONS + 4;

export const shape: MutationShape = { maxLength: 1 + RECORD * MAX_OPS, headerSize: 1, recordSize: RECORD, dictionary: dictionary() };

const enum Op {
  CfgRead = 0,
  CfgWrite = 1,
  BarRead = 2,
  BarWrite = 3,
  CommonWrite = 4,
  CommonRead = 5,
  Notify = 6,
  Setup = 7,
  AddChain = 8,
  Status = 9,
  Drain = 10,
  HostInput = 11,
  PciCfgWindow = 12,
  QueueSelectBeyond = 13,
  DeviceConfig = 14,
  Isr = 15,
  /** The guest writes its own memory anywhere (corrupts a ring it handed over). */
  Poke = 16,
}
const OPS = 17;

/** Every common-cfg field offset, so structure-aware ops hit fields rather than gaps. */
const COMMON_FIELDS = [
  VIRTIO_PCI_COMMON_DFSELECT,
  VIRTIO_PCI_COMMON_DF,
  VIRTIO_PCI_COMMON_GFSELECT,
  VIRTIO_PCI_COMMON_GF,
  VIRTIO_PCI_COMMON_MSIX,
  VIRTIO_PCI_COMMON_NUMQ,
  VIRTIO_PCI_COMMON_STATUS,
  VIRTIO_PCI_COMMON_CFGGENERATION,
  VIRTIO_PCI_COMMON_Q_SELECT,
  VIRTIO_PCI_COMMON_Q_SIZE,
  VIRTIO_PCI_COMMON_Q_MSIX,
  VIRTIO_PCI_COMMON_Q_ENABLE,
  VIRTIO_PCI_COMMON_Q_NOFF,
  VIRTIO_PCI_COMMON_Q_DESCLO,
  VIRTIO_PCI_COMMON_Q_DESCHI,
  VIRTIO_PCI_COMMON_Q_AVAILLO,
  VIRTIO_PCI_COMMON_Q_AVAILHI,
  VIRTIO_PCI_COMMON_Q_USEDLO,
  VIRTIO_PCI_COMMON_Q_USEDHI,
  VIRTIO_PCI_COMMON_Q_NDATA,
  VIRTIO_PCI_COMMON_Q_RESET,
] as const;
/** The per-queue registers (4.1.4.3), each of which a queue_select beyond num_queues must make inert. */
const QUEUE_FIELDS = [
  VIRTIO_PCI_COMMON_Q_SIZE,
  VIRTIO_PCI_COMMON_Q_MSIX,
  VIRTIO_PCI_COMMON_Q_ENABLE,
  VIRTIO_PCI_COMMON_Q_NOFF,
  VIRTIO_PCI_COMMON_Q_DESCLO,
  VIRTIO_PCI_COMMON_Q_DESCHI,
  VIRTIO_PCI_COMMON_Q_AVAILLO,
  VIRTIO_PCI_COMMON_Q_AVAILHI,
  VIRTIO_PCI_COMMON_Q_USEDLO,
  VIRTIO_PCI_COMMON_Q_USEDHI,
  VIRTIO_PCI_COMMON_Q_NDATA,
  VIRTIO_PCI_COMMON_Q_RESET,
] as const;

/**
 * What a queue that does not exist reads as, field by field at its own width (4.1.4.3: queue_size 0
 * means unavailable; nothing is enabled or placed; queue_msix_vector may read NO_VECTOR, as QEMU's).
 * queue_notify_off is left out: QEMU reads the selected index back for any queue.
 */
const ABSENT_QUEUE_READS: ReadonlyArray<readonly [number, AccessSize, readonly number[]]> = [
  [VIRTIO_PCI_COMMON_Q_SIZE, 2, [0]],
  [VIRTIO_PCI_COMMON_Q_ENABLE, 2, [0]],
  [VIRTIO_PCI_COMMON_Q_MSIX, 2, [0, VIRTIO_MSI_NO_VECTOR]],
  [VIRTIO_PCI_COMMON_Q_DESCLO, 4, [0]],
  [VIRTIO_PCI_COMMON_Q_DESCHI, 4, [0]],
  [VIRTIO_PCI_COMMON_Q_AVAILLO, 4, [0]],
  [VIRTIO_PCI_COMMON_Q_AVAILHI, 4, [0]],
  [VIRTIO_PCI_COMMON_Q_USEDLO, 4, [0]],
  [VIRTIO_PCI_COMMON_Q_USEDHI, 4, [0]],
];

function width(w: number): AccessSize {
  return ([1, 2, 4] as const)[w % 3]!;
}

export async function run(data: Uint8Array): Promise<void> {
  const input = new FuzzInput(data);
  const pick = input.u8();
  const zoo = makeZooDevice(ZOO_KINDS[pick % ZOO_KINDS.length]!);
  const variant = Math.floor(pick / ZOO_KINDS.length);
  const mode = MODES[variant % MODES.length]!;
  const hasModern = mode !== 'legacy';
  const mem = new GuardedMemory(REGION * REGIONS, { base: MEM_BASE, allowAllReads: true });
  let irqs = 0;
  const fn = new VirtioPciFunction(
    zoo.device,
    { memory: mem, sendMsi: () => void irqs++, setIntx: () => void irqs++ },
    { mode, msixVectors: MSIX_VECTORS[Math.floor(variant / MODES.length) % MSIX_VECTORS.length]! },
  );
  const core = fn.core;
  const nq = core.queues.length;
  const allowance = new WriteAllowance();
  const bar = (offset: number, size: AccessSize): number => fn.barReadDirect(MODERN_BAR, offset, size);
  const setBar = (offset: number, size: AccessSize, value: number): void => fn.barWrite(MODERN_BAR, offset, size, value);
  let mocks: MockQueue[] = [];

  const queueConfigs = (): string =>
    core.queues
      .map(
        (q) =>
          `${q.size},${fn.notifications.queueVector(q.index)},${q.enabled},${q.ringAddress('desc')},${q.ringAddress('driver')},${q.ringAddress('device')}`,
      )
      .join(';');

  /** One guest access under guard: nothing may throw, memory writes only where the guest allowed. */
  const allow = (): void => {
    allowance.collect(
      mem.inner,
      core.queues.filter((q) => q.enabled).map((q) => ({ size: q.size, desc: q.ringAddress('desc'), used: q.ringAddress('device') })),
    );
    allowance.applyTo(mem);
  };
  const access = <T>(what: string, fn: () => T): T => {
    allow();
    mem.snapshot();
    irqs = 0;
    const r = expectTyped(what, [], fn) as T;
    // Queues enabled by this very access (DRIVER_OK) may have had their used rings written.
    allow();
    const problems = mem.problems();
    if (problems.length > 0)
      throw new GuaranteeViolation(
        'memory-outside',
        `${what}: ${problems.map((p) => `${p.kind}@0x${p.addr.toString(16)}+${p.len}`).join(' ')}`,
      );
    check(irqs <= MAX_IRQS_PER_ACCESS, 'hang', () => `${what} raised ${irqs} interrupts`);
    check(
      core.fault === undefined || (core.status & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET) !== 0,
      'contract',
      () => `fault ${core.fault?.message} without DEVICE_NEEDS_RESET`,
    );
    return r;
  };

  /** Write device_status through the interface the function has (the modern one when it has both). */
  const writeStatus = (value: number): void =>
    hasModern ? setBar(VIRTIO_PCI_COMMON_STATUS, 1, value) : fn.barWrite(LEGACY_BAR, VIRTIO_PCI_STATUS, 1, value);
  const statusBar = hasModern ? MODERN_BAR : LEGACY_BAR;
  const legacy = (offset: number, size: AccessSize, value: number): void => fn.barWrite(LEGACY_BAR, offset, size, value);

  /**
   * A legacy driver's initialisation (4.1.4.10, 3.1.1 without FEATURES_OK): queue i at PFN of page
   * 2i of guest memory (the legacy layout needs its used ring on the next page), then DRIVER_OK.
   */
  const legacySetup = (featureMask: number): void => {
    fn.configWrite(PCI_BASE_ADDRESS_0 + 4 * LEGACY_BAR, 4, IO_BASE);
    fn.configWrite(PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    legacy(VIRTIO_PCI_STATUS, 1, 0);
    legacy(VIRTIO_PCI_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE);
    legacy(VIRTIO_PCI_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    legacy(VIRTIO_PCI_GUEST_FEATURES, 4, fn.barRead(LEGACY_BAR, VIRTIO_PCI_HOST_FEATURES, 4) & featureMask);
    core.queues.forEach((_, i) => {
      legacy(VIRTIO_PCI_QUEUE_SEL, 2, i);
      legacy(VIRTIO_PCI_QUEUE_PFN, 4, (MEM_BASE + 2 * i * REGION) / 2 ** VIRTIO_PCI_QUEUE_ADDR_SHIFT);
    });
    legacy(VIRTIO_PCI_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK);
    const status = core.status;
    check(
      (status & VIRTIO_CONFIG_S_DRIVER_OK) !== 0 && (status & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET) === 0,
      'contract',
      () => `legacy initialisation after reset ended in status 0x${status.toString(16)} (${core.fault?.message ?? 'no fault'})`,
    );
  };

  /** A driver's initialisation (3.1.1) over fresh rings: must end in DRIVER_OK unless features were refused. */
  const setup = (featureMask: number): void => {
    fn.configWrite(PCI_BASE_ADDRESS_0 + 4 * MODERN_BAR, 4, splitU64(BAR4_BASE)[0]);
    fn.configWrite(PCI_BASE_ADDRESS_0 + 4 * MODERN_BAR + 4, 4, splitU64(BAR4_BASE)[1]);
    if (mode === 'transitional') fn.configWrite(PCI_BASE_ADDRESS_0 + 4 * LEGACY_BAR, 4, IO_BASE);
    fn.configWrite(PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    setBar(VIRTIO_PCI_COMMON_STATUS, 1, 0);
    setBar(VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE);
    setBar(VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    const wanted =
      BigInt(featureMask >>> 0) |
      bit(VIRTIO_F_VERSION_1) |
      (featureMask & 1 ? bit(VIRTIO_F_INDIRECT_DESC) : 0n) |
      (featureMask & 2 ? bit(VIRTIO_F_EVENT_IDX) : 0n);
    const features = core.offeredFeatures & wanted;
    for (let sel = 0; sel < 2; sel++) {
      setBar(VIRTIO_PCI_COMMON_GFSELECT, 4, sel);
      setBar(VIRTIO_PCI_COMMON_GF, 4, Number((features >> BigInt(32 * sel)) & 0xffff_ffffn));
    }
    setBar(VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
    if ((bar(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_FEATURES_OK) === 0) return;
    mocks.forEach((mq, i) => {
      setBar(VIRTIO_PCI_COMMON_Q_SELECT, 2, i);
      setBar(VIRTIO_PCI_COMMON_Q_SIZE, 2, mq.size);
      for (const [lo, addr] of [
        [VIRTIO_PCI_COMMON_Q_DESCLO, mq.descAddr],
        [VIRTIO_PCI_COMMON_Q_AVAILLO, mq.availAddr],
        [VIRTIO_PCI_COMMON_Q_USEDLO, mq.usedAddr],
      ] as const) {
        setBar(lo, 4, splitU64(addr)[0]);
        setBar(lo + 4, 4, splitU64(addr)[1]);
      }
      setBar(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
    });
    setBar(
      VIRTIO_PCI_COMMON_STATUS,
      1,
      VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK,
    );
    const status = bar(VIRTIO_PCI_COMMON_STATUS, 1);
    check(
      (status & VIRTIO_CONFIG_S_DRIVER_OK) !== 0 && (status & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET) === 0,
      'contract',
      () => `initialisation after reset ended in status 0x${status.toString(16)} (${core.fault?.message ?? 'no fault'})`,
    );
  };

  for (let n = 0; n < MAX_OPS && !input.done; n++) {
    const opByte = input.u8();
    const w = input.u8();
    const offset = input.u16();
    const value = input.u32();
    const size = width(w);
    const code = ((opByte & 0x1f) % OPS) as Op;
    const hi = opByte >> 5;
    switch (code) {
      case Op.CfgRead:
        access('configRead', () => fn.configRead(offset & 0xff, size));
        break;
      case Op.CfgWrite:
        access('configWrite', () => fn.configWrite(offset & 0xff, size, value));
        break;
      case Op.BarRead:
        access('barRead', () => fn.barRead(hi % 7, offset, size));
        break;
      case Op.BarWrite:
      case Op.CommonWrite: {
        const off = code === Op.BarWrite ? offset : MODERN_COMMON_OFFSET + COMMON_FIELDS[offset % COMMON_FIELDS.length]!;
        const barIndex = code === Op.BarWrite ? hi % 7 : MODERN_BAR;
        // A write covering queue_select or device_status (an unaligned one is split into naturally
        // aligned pieces, each landing on its own field) may legitimately select or reset.
        const touches = (field: number, width: number): boolean => off < field + width && field < off + size;
        const beyond =
          hasModern &&
          barIndex === MODERN_BAR &&
          bar(VIRTIO_PCI_COMMON_Q_SELECT, 2) >= nq &&
          !touches(VIRTIO_PCI_COMMON_Q_SELECT, 2) &&
          !touches(VIRTIO_PCI_COMMON_STATUS, 1);
        const before = beyond ? queueConfigs() : '';
        access('barWrite', () => fn.barWrite(barIndex, off, size, value));
        if (beyond)
          check(
            queueConfigs() === before,
            'contract',
            () => `write at 0x${off.toString(16)} with queue_select beyond num_queues changed a queue`,
          );
        const statusOffset =
          barIndex === MODERN_BAR && hasModern
            ? VIRTIO_PCI_COMMON_STATUS
            : barIndex === LEGACY_BAR && mode !== 'modern'
              ? VIRTIO_PCI_STATUS
              : -1;
        if (off === statusOffset && size === 1 && (value & 0xff) === 0 && fn.config.barEnabled(barIndex)) checkReset();
        break;
      }
      case Op.CommonRead:
        access('common read', () => fn.barRead(MODERN_BAR, COMMON_FIELDS[offset % COMMON_FIELDS.length]!, size));
        break;
      case Op.Notify:
        if (hasModern && (hi & 1) === 0)
          access('notify', () =>
            fn.barWrite(MODERN_BAR, MODERN_NOTIFY_OFFSET + (offset % (nq + 2)) * MODERN_NOTIFY_OFF_MULTIPLIER, size, value),
          );
        else if (mode !== 'modern') access('legacy notify', () => legacy(VIRTIO_PCI_QUEUE_NOTIFY, 2, offset % (nq + 2)));
        break;
      case Op.Setup:
        // The guest clears its memory and lays out fresh rings, then programs the device.
        mem.inner.bytes.fill(0);
        if (!hasModern) {
          mocks = [];
          access('legacy initialisation', () => legacySetup(value));
          break;
        }
        mocks = core.queues.map(
          (_, i) =>
            new MockQueue({
              size: ZOO_QUEUE_SIZE,
              memory: new ArrayGuestMemory(mem.inner.bytes.subarray(i * REGION, (i + 1) * REGION), MEM_BASE + i * REGION),
              base: MEM_BASE + i * REGION,
              seed: i + 1,
            }),
        );
        access('initialisation', () => setup(value));
        break;
      case Op.AddChain: {
        const mq = mocks[offset % Math.max(1, mocks.length)];
        const head = input.bytes(16);
        if (mq === undefined) break;
        const readable = Array.from({ length: w & 3 }, (_, k) => (k === 0 ? head : new Uint8Array((value >>> (8 * k)) & 0xff)));
        const writable = Array.from({ length: (w >> 2) & 3 }, (_, k) => 1 + ((value >>> (8 * (3 - k))) & 0x7f));
        if (readable.length + writable.length === 0) break;
        try {
          mq.addChain({ readable, writable, indirect: (hi & 1) === 1 });
        } catch {
          // out of descriptors or room: the guest adds nothing
        }
        break;
      }
      case Op.Status:
        access('status write', () => writeStatus(value));
        if ((value & 0xff) === 0 && fn.config.barEnabled(statusBar)) checkReset();
        break;
      case Op.Drain:
        await access('drain', () => drain(hi));
        break;
      case Op.HostInput: {
        const bytes = input.bytes(Math.min(input.remaining, 14));
        const frame = new Uint8Array(14 + (value % 1600));
        frame.set(bytes);
        frame.fill(w, 14);
        access('host input', () => zoo.hostInput(offset & 1, frame));
        break;
      }
      case Op.PciCfgWindow: {
        if (!hasModern) break;
        const cap = fn.modern.capabilities.pciCfg.offset;
        access('pci_cfg window', () => {
          fn.configWrite(cap + VIRTIO_PCI_CAP_BAR, 1, hi % 7 === 6 ? w : MODERN_BAR);
          fn.configWrite(cap + VIRTIO_PCI_CAP_OFFSET, 4, offset | ((w & 0x80) << 24));
          fn.configWrite(cap + VIRTIO_PCI_CAP_LENGTH, 4, (w & 0x40) !== 0 ? value : size);
          if (hi & 1) fn.configWrite(cap + VIRTIO_PCI_CFG_CAP_DATA, size, value);
          else fn.configRead(cap + VIRTIO_PCI_CFG_CAP_DATA, size);
        });
        break;
      }
      case Op.QueueSelectBeyond: {
        const sel = hi & 1 ? 0xffff : nq + (offset % 64);
        const before = queueConfigs();
        // A transitional device ignores writes through the interface the driver did not commit to.
        if (fn.arbiter?.committed === ((hi & 2) !== 0 ? 'modern' : 'legacy')) break;
        if (!hasModern || (hi & 2) !== 0) {
          if (mode === 'modern') break;
          // The legacy header: queue_num of an absent queue reads 0 and its PFN takes no write.
          access('legacy queue_sel beyond num_queues', () => {
            legacy(VIRTIO_PCI_QUEUE_SEL, 2, sel);
            const num = fn.barRead(LEGACY_BAR, VIRTIO_PCI_QUEUE_NUM, 2);
            check(num === 0, 'contract', () => `legacy queue_num reads ${num} with queue_sel ${sel} of ${nq}`);
            legacy(VIRTIO_PCI_QUEUE_PFN, 4, value);
          });
          check(queueConfigs() === before, 'contract', () => `legacy writes with queue_sel ${sel} of ${nq} changed a queue`);
          break;
        }
        access('queue_select beyond num_queues', () => {
          setBar(VIRTIO_PCI_COMMON_Q_SELECT, 2, sel);
          for (const [f, w, ok] of ABSENT_QUEUE_READS) {
            const v = fn.barRead(MODERN_BAR, f, w);
            check(
              ok.includes(v),
              'contract',
              () => `queue register 0x${f.toString(16)} reads 0x${v.toString(16)} with queue_select ${sel} of ${nq}`,
            );
          }
          for (const f of QUEUE_FIELDS) {
            fn.barWrite(MODERN_BAR, f, size, value);
          }
        });
        check(queueConfigs() === before, 'contract', () => `writes with queue_select ${sel} of ${nq} changed a queue`);
        break;
      }
      case Op.DeviceConfig: {
        // Modern: the device cfg block; legacy: the header from offset 20 (24 with MSI-X on) onwards.
        const [b, at] =
          hasModern && (hi & 2) === 0
            ? [MODERN_BAR, MODERN_DEVICE_OFFSET + (offset % 0x40)]
            : [LEGACY_BAR, VIRTIO_PCI_ISR + 1 + (offset % 0x40)];
        access('device config', () => (hi & 1 ? fn.barWrite(b, at, size, value) : fn.barRead(b, at, size)));
        break;
      }
      case Op.Isr:
        access('isr read', () =>
          hasModern && (hi & 2) === 0
            ? fn.barRead(MODERN_BAR, MODERN_ISR_OFFSET + (offset % 4), size)
            : fn.barRead(LEGACY_BAR, VIRTIO_PCI_ISR, 1),
        );
        break;
      case Op.Poke: {
        const at = MEM_BASE + (offset % (REGION * REGIONS - 4));
        if (size === 4) mem.inner.write32(at, value);
        else if (size === 2) mem.inner.write16(at, value & 0xffff);
        else mem.inner.write8(at, value & 0xff);
        break;
      }
    }
  }
  await access('final drain', () => drain(3));

  function checkReset(): void {
    const status = core.status;
    check(
      status === 0 && core.queues.every((q) => !q.enabled) && fn.notifications.peekIsr() === 0 && core.fault === undefined,
      'contract',
      () => `after writing status 0: status 0x${status.toString(16)}, ISR ${fn.notifications.peekIsr()}`,
    );
  }
}

/** Let microtask and immediate work (async completions, stream events) run. */
async function drain(rounds: number): Promise<void> {
  for (let i = 0; i <= rounds % 4; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

// ---- seeds ----

function op(w: InputWriter, code: Op, hi: number, width: number, offset: number, value: number): InputWriter {
  return w
    .u8(code | (hi << 5))
    .u8(width)
    .u16(offset)
    .u32(value);
}

export function seeds(): Seed[] {
  const s: Seed[] = [];
  ZOO_KINDS.forEach((kind, k) => {
    const w = new InputWriter().u8(k);
    op(w, Op.Setup, 0, 0, 0, 0xffffffff);
    for (let i = 0; i < 3; i++) {
      op(w, Op.AddChain, i & 1, 1 | (1 << 2), i, 0x00102040);
      w.bytes([i === 1 ? 1 : 0, 0, 0, 0, 0, 0, 0, 0, i, 0, 0, 0, 0, 0, 0, 0]);
      op(w, Op.Notify, 0, 1, i, i);
    }
    op(w, Op.HostInput, 0, 0x41, 0, 60);
    w.bytes([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 8, 0]);
    op(w, Op.Drain, 1, 0, 0, 0);
    op(w, Op.Isr, 0, 0, 0, 0);
    op(w, Op.Status, 0, 0, 0, 0);
    op(w, Op.Setup, 0, 0, 0, 0);
    s.push({ name: `${kind}-init-traffic-reset`, data: w.finish() });
  });
  ZOO_KINDS.forEach((kind, k) => {
    const w = new InputWriter().u8(k);
    op(w, Op.Setup, 0, 0, 0, 0);
    op(w, Op.Status, 0, 0, 0, 0);
    // configure the device part way, then select every queue beyond num_queues and write every queue register
    op(w, Op.Status, 0, 0, 0, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
    op(w, Op.QueueSelectBeyond, 0, 1, 0, 0xffffffff);
    op(w, Op.QueueSelectBeyond, 1, 2, 0, 0x12345678);
    s.push({ name: `${kind}-queue-select-beyond-num-queues`, data: w.finish() });
  });
  {
    // a notify after the guest corrupts avail.idx (a jump beyond the queue size): the device must set
    // NEEDS_RESET, and a reset and fresh initialisation must bring it back
    const w = new InputWriter().u8(0);
    op(w, Op.Setup, 0, 0, 0, 0);
    op(w, Op.AddChain, 0, 1 << 2, 0, 0x10000000);
    w.bytes(new Uint8Array(16));
    const rng = new MockQueue({ size: ZOO_QUEUE_SIZE, memory: new ArrayGuestMemory(REGION, MEM_BASE), base: MEM_BASE, seed: 1 });
    op(w, Op.Poke, 0, 1, rng.availAddr + 2 - MEM_BASE, 0x4000);
    s.push({
      name: 'rng-avail-index-jump-then-reset',
      data: op(op(op(op(w, Op.Notify, 0, 2, 0, 0), Op.Isr, 0, 0, 0, 0), Op.Status, 0, 0, 0, 0), Op.Setup, 0, 0, 0, 0).finish(),
    });
  }
  ZOO_KINDS.forEach((kind, k) => {
    // Legacy-only (variant 2) and transitional with MSI-X (variant 4): initialise, traffic by raw pokes, reset.
    for (const variant of [2, 4]) {
      const w = new InputWriter().u8(k + ZOO_KINDS.length * variant);
      op(w, Op.Setup, 0, 0, 0, 0xffffffff);
      op(w, Op.Notify, 1, 1, 0, 0);
      op(w, Op.Isr, 2, 0, 0, 0);
      op(w, Op.DeviceConfig, 2, 1, 0, 0);
      op(w, Op.QueueSelectBeyond, 2, 2, 1, 0x1234);
      op(w, Op.Status, 0, 0, 0, 0);
      op(w, Op.Setup, 0, 0, 0, 0);
      s.push({ name: `${kind}-${variant === 2 ? 'legacy' : 'transitional-msix'}-init-reset`, data: w.finish() });
    }
  });
  {
    // BAR sizing and reprogramming, 64-bit BAR halves, command register toggles
    const w = new InputWriter().u8(1);
    op(w, Op.CfgWrite, 0, 2, PCI_BASE_ADDRESS_0 + 16, 0xffffffff);
    op(w, Op.CfgRead, 0, 2, PCI_BASE_ADDRESS_0 + 16, 0);
    op(w, Op.CfgWrite, 0, 2, PCI_BASE_ADDRESS_0 + 20, 0xffffffff);
    op(w, Op.CfgWrite, 0, 1, PCI_COMMAND, PCI_COMMAND_MEMORY);
    op(w, Op.BarRead, MODERN_BAR, 2, 0x3ffe, 0);
    op(w, Op.BarWrite, MODERN_BAR, 2, 0xffff, 0xffffffff);
    op(w, Op.PciCfgWindow, 1, 2, 0x3ffc, 0);
    op(w, Op.PciCfgWindow, 0, 0x40, 0xfffd, 3);
    s.push({ name: 'bar-sizing-and-pci-cfg-window', data: w.finish() });
  }
  return s;
}

function dictionary(): Uint8Array[] {
  const d: Uint8Array[] = [];
  for (const code of [Op.Setup, Op.Notify, Op.Drain, Op.Isr, Op.QueueSelectBeyond])
    d.push(op(new InputWriter(), code, 0, 1, 0, 0).finish());
  d.push(op(new InputWriter(), Op.Status, 0, 0, 0, 0).finish());
  return d;
}
