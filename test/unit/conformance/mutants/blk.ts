/**
 * Mutants of our virtio-blk device (family 'blk'): each one rule of spec 5.2 removed, by a wrapper
 * that changes the offer, a configuration byte, the status byte or data of one kind of request, or
 * (for the legacy writeback rules) what a legacy status or feature write does.
 */

import type { Bdf } from '../../../../src/bus/pci-bus.js';
import { BlkDevice, type BlkDeviceOptions } from '../../../../src/device/blk/blk-device.js';
import { MemoryBlockBackend } from '../../../../src/device/blk/memory-backend.js';
import type { Machine } from '../../../../src/platform/machine.js';
import type { PciFunction } from '../../../../src/pci/function.js';
import { VirtioPciFunction } from '../../../../src/transport/pci/virtio-pci-function.js';
import {
  VIRTIO_BLK_CONFIG_UNUSED0,
  VIRTIO_BLK_CONFIG_UNUSED1,
  VIRTIO_BLK_CONFIG_WRITEBACK,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_SECURE_ERASE,
  VIRTIO_BLK_F_ZONED,
  VIRTIO_BLK_ID_BYTES,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_SECTOR_SIZE,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
  VIRTIO_BLK_T_ZONE_APPEND,
  VIRTIO_BLK_T_ZONE_OPEN,
  VIRTIO_BLK_T_ZONE_REPORT,
} from '../../../../src/spec/blk.js';
import { featureSet } from '../../../../src/spec/features.js';
import type { Mutant, Mutants } from './mutant.js';
import { readablePart, WrappedDevice, writableBuffers, type UsedChain, type WrapHooks } from './wrap-device.js';

/** 64 sectors: small, and every check's sectors (0..2, capacity) are meaningful. */
const SECTORS = 64;

function disk(readOnly = false): BlkDeviceOptions {
  return { backend: new MemoryBlockBackend(SECTORS * VIRTIO_BLK_SECTOR_SIZE, { readOnly }) };
}

/** The disk as a transitional function (both interfaces), with `hooks` when given. */
function plugBlk(machine: Machine, options: BlkDeviceOptions, hooks?: WrapHooks): Bdf {
  const blk = new BlkDevice(options);
  return machine.plugVirtio(hooks ? new WrappedDevice(blk, hooks) : blk, { mode: 'transitional' }).bdf;
}

function mutant(breaks: string, hooks: WrapHooks, readOnly = false): Mutant {
  return {
    breaks,
    original: (machine) => plugBlk(machine, disk(readOnly)),
    mutant: (machine) => plugBlk(machine, disk(readOnly), hooks),
  };
}

/** A request as the device saw it, when its used element is pushed. */
interface SeenRequest {
  readonly type: number;
  readonly sector: number;
  /** The bytes after the header (data out, segments). */
  readonly out: Uint8Array;
  readonly chain: UsedChain;
}

function seen(chain: UsedChain): SeenRequest | undefined {
  const readable = readablePart(chain);
  if (readable.length < 16) return undefined;
  const view = new DataView(readable.buffer, readable.byteOffset);
  return { type: view.getUint32(0, true), sector: Number(view.getBigUint64(8, true)), out: readable.subarray(16), chain };
}

/** Rewrites a request's answer: `rewrite` returns the status to write instead, or undefined to leave it; it may change the data too. */
function answerMutant(
  breaks: string,
  rewrite: (request: SeenRequest, memory: UsedChain['memory']) => number | undefined,
  readOnly = false,
): Mutant {
  return mutant(
    breaks,
    {
      used(chain) {
        const request = seen(chain);
        const last = writableBuffers(chain).at(-1);
        if (request && last) {
          const status = rewrite(request, chain.memory);
          if (status !== undefined) chain.memory.write8(last.addr + last.len - 1, status);
        }
        return chain.len;
      },
    },
    readOnly,
  );
}

/** A data byte of a request's first device-writable buffer. */
function poke(request: SeenRequest, at: number, value: number): void {
  const data = writableBuffers(request.chain)[0];
  if (data && data.len > 1) request.chain.memory.write8(data.addr + Math.min(at, data.len - 1), value);
}

const segmentFlags = (r: SeenRequest): number =>
  r.out.length >= 16 ? new DataView(r.out.buffer, r.out.byteOffset).getUint32(12, true) : 0;

/** Every legacy status or driver-feature write flips writeback (5.2.5.3 forbids both). */
function legacyWritebackFlipper(): Mutant {
  return {
    breaks: 'a legacy status or driver-feature write changes writeback',
    original: (machine) => plugBlk(machine, disk()),
    mutant(machine) {
      const blk = new BlkDevice(disk());
      return machine.plug((host) => {
        const fn = new VirtioPciFunction(blk, host, { mode: 'transitional' });
        return flipOnLegacyWrite(fn, blk);
      }).bdf;
    },
  };
}

/** `fn` with writeback flipped by each legacy driver-features write (register 4) and set to 1 by each status write (register 18). */
function flipOnLegacyWrite(fn: PciFunction, blk: BlkDevice): PciFunction {
  return {
    configRead: (offset, size) => fn.configRead(offset, size),
    configWrite: (offset, size, value) => fn.configWrite(offset, size, value),
    get bars() {
      return fn.bars;
    },
    decodedBars: () => fn.decodedBars(),
    barRead: (bar, offset, size) => fn.barRead(bar, offset, size),
    barWrite(bar, offset, size, value) {
      fn.barWrite(bar, offset, size, value);
      if (bar !== 0) return;
      if (offset === 4) blk.writeConfig(VIRTIO_BLK_CONFIG_WRITEBACK, 1, blk.readConfig(VIRTIO_BLK_CONFIG_WRITEBACK, 1) ^ 1);
      else if (offset === 18 && value !== 0) blk.writeConfig(VIRTIO_BLK_CONFIG_WRITEBACK, 1, 1);
    },
  };
}

const noFlush = mutant('FLUSH is not offered (CONFIG_WCE still is)', { features: (f) => f & ~featureSet(VIRTIO_BLK_F_FLUSH) });
const zoneOk = answerMutant('zone requests without ZONED are answered OK', (r) =>
  [VIRTIO_BLK_T_ZONE_REPORT, VIRTIO_BLK_T_ZONE_OPEN, VIRTIO_BLK_T_ZONE_APPEND].includes(r.type) ? VIRTIO_BLK_S_OK : undefined,
);
const unknownFlagOk = answerMutant('segments with unknown flags or unmap on DISCARD are answered OK', (r) =>
  (r.type === VIRTIO_BLK_T_DISCARD || r.type === VIRTIO_BLK_T_WRITE_ZEROES) && segmentFlags(r) !== 0 ? VIRTIO_BLK_S_OK : undefined,
);
const roWrites = answerMutant(
  'a read-only device answers writes OK',
  (r) => (r.type === VIRTIO_BLK_T_OUT ? VIRTIO_BLK_S_OK : undefined),
  true,
);

/** A read-only disk that stores what a write carries (and still answers IOERR). */
function roStoresData(): Mutant {
  return {
    breaks: 'a read-only device writes the data of a refused write',
    original: (machine) => plugBlk(machine, disk(true)),
    mutant(machine) {
      const backend = new MemoryBlockBackend(SECTORS * VIRTIO_BLK_SECTOR_SIZE, { readOnly: true });
      return plugBlk(
        machine,
        { backend },
        {
          used(chain) {
            const r = seen(chain);
            if (r?.type === VIRTIO_BLK_T_OUT && r.sector < SECTORS)
              backend.bytes.set(r.out.subarray(0, (SECTORS - r.sector) * 512), r.sector * 512);
            return chain.len;
          },
        },
      );
    },
  };
}

/** A disk whose WRITE_ZEROES leaves the sectors as they were. */
function zeroesNotWritten(): Mutant {
  return {
    breaks: 'WRITE_ZEROES completes without zeroing',
    original: (machine) => plugBlk(machine, disk()),
    mutant(machine) {
      const backend = new MemoryBlockBackend(SECTORS * VIRTIO_BLK_SECTOR_SIZE);
      backend.writeZeroes = () => undefined;
      return plugBlk(machine, { backend });
    },
  };
}

export const blkMutants: Mutants = {
  'blk/flush-offered': noFlush,
  'blk/config-wce-needs-flush': noFlush,
  'blk/writeback-zero-without-flush': mutant('writeback reads 1 whatever was negotiated', {
    readConfig: (offset, size, inner) => (offset === VIRTIO_BLK_CONFIG_WRITEBACK && size === 1 ? 1 : inner()),
  }),
  'blk/unused0-zero': mutant('unused0 reads 0x5a', {
    readConfig: (offset, size, inner) => (offset === VIRTIO_BLK_CONFIG_UNUSED0 && size === 1 ? 0x5a : inner()),
  }),
  'blk/unused1-zero': mutant('SECURE_ERASE offered and unused1[1] reads 1', {
    features: (f) => f | featureSet(VIRTIO_BLK_F_SECURE_ERASE),
    readConfig: (offset, size, inner) => (offset === VIRTIO_BLK_CONFIG_UNUSED1 + 1 && size === 1 ? 1 : inner()),
  }),
  'blk/legacy-no-zoned': mutant('ZONED offered on the legacy interface', { features: (f) => f | featureSet(VIRTIO_BLK_F_ZONED) }),
  'blk/legacy-writeback-kept-across-status': legacyWritebackFlipper(),
  'blk/legacy-writeback-kept-across-features': legacyWritebackFlipper(),
  'blk/status-values': answerMutant('reads are answered with status 3', (r) => (r.type === VIRTIO_BLK_T_IN ? 3 : undefined)),
  'blk/unknown-type-unsupp': answerMutant('unknown request types are answered IOERR', (r) =>
    r.type === 0xff ? VIRTIO_BLK_S_IOERR : undefined,
  ),
  'blk/read-past-capacity-ioerr': answerMutant('reads past capacity are answered OK', (r) =>
    r.type === VIRTIO_BLK_T_IN && r.sector >= SECTORS ? VIRTIO_BLK_S_OK : undefined,
  ),
  'blk/write-past-capacity-ioerr': answerMutant('writes past capacity are answered OK', (r) =>
    r.type === VIRTIO_BLK_T_OUT && r.sector >= SECTORS ? VIRTIO_BLK_S_OK : undefined,
  ),
  'blk/read-returns-written': answerMutant('reads return one byte changed', (r) => {
    if (r.type === VIRTIO_BLK_T_IN) poke(r, 100, 0);
    return undefined;
  }),
  'blk/get-id-nul-padded': answerMutant('GET_ID pads with a non-NUL last byte', (r) => {
    if (r.type === VIRTIO_BLK_T_GET_ID) poke(r, VIRTIO_BLK_ID_BYTES - 1, 0x78);
    return undefined;
  }),
  'blk/get-id-ascii': answerMutant('GET_ID returns a non-ASCII first byte', (r) => {
    if (r.type === VIRTIO_BLK_T_GET_ID) poke(r, 0, 0xc3);
    return undefined;
  }),
  'blk/flush-completes-ok': answerMutant('FLUSH is answered IOERR', (r) =>
    r.type === VIRTIO_BLK_T_FLUSH ? VIRTIO_BLK_S_IOERR : undefined,
  ),
  'blk/ro-write-ioerr': roWrites,
  'blk/ro-write-no-data': roStoresData(),
  'blk/discard-unmap-unsupp': unknownFlagOk,
  'blk/discard-unknown-flag-unsupp': unknownFlagOk,
  'blk/write-zeroes-unknown-flag-unsupp': unknownFlagOk,
  'blk/write-zeroes-reads-zero': zeroesNotWritten(),
  'blk/write-zeroes-unmap-reads-zero': zeroesNotWritten(),
  'blk/zone-report-unsupp-without-zoned': zoneOk,
  'blk/zone-open-unsupp-without-zoned': zoneOk,
  'blk/zone-append-unsupp-without-zoned': zoneOk,
};
