/**
 * How soon an INTx our function raises inside a guest access reaches the guest, counted in the
 * guest's own instructions (no wall time): a boot sector (SeaBIOS boots it from v86's IDE disk; no
 * Linux) notifies a probe function with `out dx, al`, whose write raises INTx, and then counts loop
 * iterations until its interrupt handler runs. Each iteration calls a `ret` on the next page, which
 * hands control back to v86's CPU loop (v86 returns there whenever code leaves a page), the place v86
 * itself takes interrupts between instructions. The interrupt must arrive there, within an
 * iteration or two of the notify, not when v86's time slice ends (tens of thousands of iterations),
 * and never inside the port write itself (mid-instruction).
 */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { V86 } from 'v86';
import { findGuestAssets } from '../../../src/platform/v86/assets.js';
import { v86Internals, type V86Cpu } from '../../../src/platform/v86/internals.js';
import { V86PciAdapter } from '../../../src/platform/v86/pci-adapter.js';
import type { DeviceHost } from '../../../src/pci/function.js';
import type { AccessSize } from '../../../src/memory/access-size.js';
import { PCI_INTERRUPT_LINE } from '../../../src/spec/pci.js';
import { PROBE_IO_BAR, ProbeFunction } from '../../helpers/probe-function.js';

/**
 * The boot sector (loaded at 0000:7C00, real mode), assembled with GNU as (.code16, ld -Ttext=0x7c00):
 *
 *   7c00 cli; xor ax,ax; mov ds,ax; mov ss,ax; mov sp,0x7c00
 *   7c0a mov byte [0x8000],0xc3          ; a `ret` on the next page
 *   7c0f mov byte [0x500],1              ; ready: the host fills in 0x502-0x509 and the vector
 *   7c14 wait: cmp byte [0x501],0; je wait
 *   7c1b mov dx,[0x502]                  ; the probe's I/O port
 *   7c1f mov al,[0x504]; out 0x21,al; mov al,[0x505]; out 0xa1,al   ; PIC masks
 *   7c29 xor bx,bx
 *   7c2b round: xor esi,esi; mov byte [0x506],0; sti; mov al,1
 *   7c36 out dx,al                       ; notify: the probe raises INTx
 *   7c37 spin: inc esi; call 0x8000; cmp byte [0x506],0; je spin
 *   7c43 add bx,4; cmp bx,[0x508]; jb round
 *   7c4c mov byte [0x500],2; cli; done: hlt; jmp done
 *   7c55 handler: mov [bx+0x510],esi     ; iterations between the notify and the interrupt
 *   7c5a mov al,0; out dx,al             ; the probe lowers INTx
 *   7c5d mov byte [0x506],1; mov al,0x20; out 0xa0,al; out 0x20,al; iret
 */
const BOOT_SECTOR = Buffer.from(
  'fa31c08ed88ed0bc007cc6060080c3c606000501803e01050074f98b160205a0' +
    '0405e621a00505e6a131db6631f6c606060500fbb001ee6646e8c403803e0605' +
    '0074f483c3043b1e080572dfc606000502faf4ebfd6689b71005b000eec60606' +
    '0501b020e6a0e620cf',
  'hex',
);
const HANDLER = 0x7c55;
const READY = 0x500;
const GO = 0x501;
const PORT = 0x502;
const MASKS = 0x504;
const END = 0x508;
const SPINS = 0x510;
const ROUNDS = 16;
/** Iterations allowed between the notify and the interrupt: the one under way and the next. */
const MAX_SPINS = 2;
const PROBE = 13 << 3;
/** The master PIC's vectors start at 8 under SeaBIOS, the slave's at 0x70; IRQ 2 is the cascade. */
const MASTER_BASE = 0x08;
const SLAVE_BASE = 0x70;
const CASCADE = 2;

/** EFLAGS.IF: real mode's interrupt entry clears it, so it tells whether an interrupt was taken. */
const EFLAGS_IF = 0x200;

/**
 * A probe whose I/O port 0 drives its INTx: 1 raises it, 0 lowers it. For each raise it records
 * whether the CPU still had IF set once the raise returned, still inside the guest's `out`: an
 * interrupt taken there would be taken in the middle of the instruction.
 */
class IntxProbe extends ProbeFunction {
  readonly ifAfterRaise: boolean[] = [];

  override barWrite(bar: number, offset: number, size: AccessSize, value: number): void {
    super.barWrite(bar, offset, size, value);
    if (bar !== PROBE_IO_BAR || offset !== 0) return;
    this.setIntx(value !== 0);
    if (value !== 0) this.ifAfterRaise.push((cpu.flags[0]! & EFLAGS_IF) !== 0);
  }
}

let emulator: V86;
let cpu: V86Cpu;
let probe: IntxProbe;

function image(path: string): { buffer: ArrayBuffer } {
  const bytes = readFileSync(path);
  const buffer = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(buffer).set(bytes);
  return { buffer };
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (ok()) return;
    await sleep(50);
  }
  assert.fail(`the guest never got to: ${what}`);
}

before(async () => {
  const disk = new Uint8Array(1 << 20);
  disk.set(BOOT_SECTOR);
  disk[510] = 0x55;
  disk[511] = 0xaa;
  emulator = new V86({
    wasm_path: createRequire(import.meta.url).resolve('v86/build/v86.wasm'),
    bios: image(findGuestAssets().bios),
    hda: { buffer: disk.buffer },
    memory_size: 16 << 20,
    autostart: false,
  });
  await new Promise<void>((resolve) => emulator.add_listener('emulator-loaded', () => resolve()));
  cpu = v86Internals(emulator);
  const adapter = new V86PciAdapter(emulator);
  probe = adapter.plug(PROBE, 'intx-probe', (host: DeviceHost) => new IntxProbe(host));
  await emulator.run();
});

after(async () => {
  await emulator?.destroy();
});

test("an INTx raised inside the guest's port write reaches the guest after that instruction, at v86's next return to its CPU loop", async () => {
  await until('its boot sector', () => cpu.read8(READY) === 1);
  const io = probe.decodedBars().find((bar) => bar.kind === 'io');
  assert.ok(io !== undefined, 'SeaBIOS placed the I/O BAR and enabled I/O decoding');
  const line = probe.configRead(PCI_INTERRUPT_LINE, 1);
  assert.ok(line > 0 && line < 16 && line !== CASCADE, `SeaBIOS routed INTA# to IRQ ${line}`);
  const vector = line < 8 ? MASTER_BASE + line : SLAVE_BASE + line - 8;
  cpu.write16(vector * 4, HANDLER);
  cpu.write16(vector * 4 + 2, 0);
  cpu.write16(PORT, io.base);
  cpu.write8(MASKS, line < 8 ? ~(1 << line) & 0xff : ~(1 << CASCADE) & 0xff);
  cpu.write8(MASKS + 1, line < 8 ? 0xff : ~(1 << (line - 8)) & 0xff);
  cpu.write16(END, ROUNDS * 4);
  cpu.write8(GO, 1);
  await until(`${ROUNDS} interrupts`, () => cpu.read8(READY) === 2);
  assert.deepEqual(probe.ifAfterRaise, Array<boolean>(ROUNDS).fill(true), 'no interrupt was taken inside the port write');
  const spins = Array.from({ length: ROUNDS }, (_, i) => cpu.read32s(SPINS + 4 * i) >>> 0);
  assert.ok(
    spins.every((n) => n <= MAX_SPINS),
    `iterations between each notify and its interrupt: ${spins.join(', ')} (at most ${MAX_SPINS} each)`,
  );
});
