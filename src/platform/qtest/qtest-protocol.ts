/**
 * The qtest wire protocol (QEMU softmmu/qtest.c): one command per line, words separated by single
 * spaces; each command gets exactly one reply line, `OK`, `OK <value>`, `FAIL <text>` or
 * `ERR <text>`, and `IRQ raise N` / `IRQ lower N` lines arrive asynchronously in between.
 *
 * QEMU asserts on a missing or unparsable argument and aborts the whole machine, so every command is
 * built here from typed, range-checked arguments and never from a caller's string.
 */

import { UsageError } from '../../errors.js';

/** Port I/O and MMIO widths the protocol has a command for. */
export type PortWidth = 1 | 2 | 4;
export type MemWidth = 1 | 2 | 4 | 8;

const PORT_SUFFIX: Readonly<Record<PortWidth, string>> = { 1: 'b', 2: 'w', 4: 'l' };
const MEM_SUFFIX: Readonly<Record<MemWidth, string>> = { 1: 'b', 2: 'w', 4: 'l', 8: 'q' };

/** Highest I/O port (QEMU asserts addr <= 0xffff). */
const PORT_MAX = 0xffff;

function hex(n: number | bigint): string {
  return `0x${n.toString(16)}`;
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > PORT_MAX) throw new UsageError(`qtest: I/O port ${port} out of range 0..0xffff`);
}

/** Addresses are numbers below 2^53 (all guest-physical addresses we use); QEMU parses them as u64. */
function checkAddr(addr: number): void {
  if (!Number.isSafeInteger(addr) || addr < 0) throw new UsageError(`qtest: address ${addr} is not a non-negative safe integer`);
}

function checkValue(value: number | bigint, width: MemWidth | PortWidth): void {
  const ok =
    typeof value === 'bigint'
      ? value >= 0n && value < 1n << BigInt(8 * width)
      : Number.isInteger(value) && value >= 0 && (width === 8 ? Number.isSafeInteger(value) : value < 2 ** (8 * width));
  if (!ok) throw new UsageError(`qtest: value ${value} does not fit in ${width} byte(s)`);
}

function checkLength(len: number): void {
  // A zero length is refused by QEMU (assertion in `read`, ERR in b64write), so it is refused here.
  if (!Number.isSafeInteger(len) || len <= 0) throw new UsageError(`qtest: length ${len} must be a positive integer`);
}

/** `inb|inw|inl PORT`. */
export function inCommand(width: PortWidth, port: number): string {
  checkPort(port);
  return `in${PORT_SUFFIX[width]} ${hex(port)}`;
}

/** `outb|outw|outl PORT VALUE`. */
export function outCommand(width: PortWidth, port: number, value: number): string {
  checkPort(port);
  checkValue(value, width);
  return `out${PORT_SUFFIX[width]} ${hex(port)} ${hex(value)}`;
}

/** `readb|readw|readl|readq ADDR`. */
export function readCommand(width: MemWidth, addr: number): string {
  checkAddr(addr);
  return `read${MEM_SUFFIX[width]} ${hex(addr)}`;
}

/** `writeb|writew|writel|writeq ADDR VALUE`. */
export function writeCommand(width: MemWidth, addr: number, value: number | bigint): string {
  checkAddr(addr);
  checkValue(value, width);
  return `write${MEM_SUFFIX[width]} ${hex(addr)} ${hex(value)}`;
}

/** `b64read ADDR SIZE`: SIZE bytes of guest memory, base64 in the reply. */
export function b64readCommand(addr: number, size: number): string {
  checkAddr(addr);
  checkLength(size);
  return `b64read ${hex(addr)} ${hex(size)}`;
}

/** `b64write ADDR SIZE B64`: the bytes, in memory order. */
export function b64writeCommand(addr: number, bytes: Uint8Array): string {
  checkAddr(addr);
  checkLength(bytes.length);
  const b64 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  return `b64write ${hex(addr)} ${hex(bytes.length)} ${b64}`;
}

/** `memset ADDR SIZE BYTE`. */
export function memsetCommand(addr: number, size: number, byte: number): string {
  checkAddr(addr);
  checkLength(size);
  checkValue(byte, 1);
  return `memset ${hex(addr)} ${hex(size)} ${hex(byte)}`;
}

/** A QOM path as QEMU's object_resolve_path takes it: no spaces, no line breaks, not empty. */
function checkQomPath(path: string): void {
  if (!/^[A-Za-z0-9_./\-[\]]+$/.test(path)) throw new UsageError(`qtest: ${JSON.stringify(path)} is not a QOM path`);
}

/** `irq_intercept_in QOM-PATH`: report the device's GPIO inputs as IRQ lines. */
export function irqInterceptInCommand(qomPath: string): string {
  checkQomPath(qomPath);
  return `irq_intercept_in ${qomPath}`;
}

/** One line from QEMU, classified. */
export type QtestLine =
  | { readonly kind: 'ok'; readonly value: string }
  | { readonly kind: 'fail'; readonly text: string }
  | { readonly kind: 'irq'; readonly line: number; readonly raised: boolean };

/** Classifies a reply line; undefined for a line the protocol does not define. */
export function parseLine(line: string): QtestLine | undefined {
  if (line === 'OK') return { kind: 'ok', value: '' };
  if (line.startsWith('OK ')) return { kind: 'ok', value: line.slice(3) };
  if (line === 'FAIL' || line.startsWith('FAIL ') || line.startsWith('ERR ')) return { kind: 'fail', text: line };
  const irq = /^IRQ (raise|lower) (\d+)$/.exec(line);
  if (irq) return { kind: 'irq', line: Number(irq[2]), raised: irq[1] === 'raise' };
  return undefined;
}

/** The number in an `OK 0x...` reply to an in/read command; undefined when it is not hex. */
export function parseHexValue(value: string): bigint | undefined {
  return /^0x[0-9a-fA-F]+$/.test(value) ? BigInt(value) : undefined;
}
