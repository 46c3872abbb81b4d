/**
 * The administration virtqueue, device side (device/admin): an owner whose SR-IOV group has 1..3
 * legacy members, fed any command bytes (any opcode, group type, member, reserved bytes, data),
 * cut anywhere and split over any buffers, with any device-writable part, between LIST_USEs and
 * resets, and guest accesses of any width to the LEGACY_NOTIFY_INFO area (which read 0 and never
 * throw). Every chain gets a used element within its own writable bytes; where the status fits it
 * is OK or EINVAL with a defined qualifier (OK with qualifier 0, reserved2 zero), EINVAL leaves
 * every member as it was, and guest memory is written only in the used ring and the chain's
 * writable buffers.
 */

import { AdminVirtqueue } from '../../src/device/admin/admin-virtqueue.js';
import { SriovGroup } from '../../src/device/admin/sriov-group.js';
import { LegacyNotifyArea } from '../../src/device/admin/legacy-notify-area.js';
import { QueueFaultError } from '../../src/errors.js';
import { usedRingSize } from '../../src/spec/ring.js';
import { encodeCommandList } from '../../src/spec/admin.js';
import { GuardedMemory } from '../../src/testing/guarded-memory.js';
import { MockQueue } from '../../src/testing/mock-queue.js';
import { deviceRing } from '../../src/queue/rings.js';
import { VirtioPciFunction } from '../../src/transport/pci/virtio-pci-function.js';
import { RngDevice } from '../../src/device/rng/rng-device.js';
import { ArrayGuestMemory } from '../../src/memory/guest-memory.js';
import { check, expectTyped } from '../engine/guarantees.js';
import { FuzzInput, InputWriter } from '../engine/input.js';
import type { MutationShape } from '../engine/mutator.js';
import type { Seed } from '../engine/target.js';

export const description = 'administration virtqueue commands: any bytes, any part lengths, LIST_USE and resets between';

const MEM = 1 << 18;
const QUEUE = 32;
const COMMANDS_PER_INPUT = 24;

export const shape: MutationShape = {
  maxLength: 2048,
  headerSize: 1,
  dictionary: [Uint8Array.of(0, 1), Uint8Array.of(1, 0), Uint8Array.of(3, 0, 1, 0), Uint8Array.of(0xff, 0xff)],
};

/** One command record: how the bytes become a struct virtio_admin_cmd and a chain. */
function commandBytes(input: FuzzInput): { readable: Uint8Array[]; writable: number[] } {
  const selector = input.u8();
  const opcode = selector < 0xf0 ? selector % 8 : input.u16();
  const groupType = [0, 1, 2, 0xffff][input.u8() % 4]!;
  const memberPick = input.u8();
  const member = memberPick < 0xf0 ? BigInt(memberPick % 5) : BigInt(input.u32()) * 0x1_0000_0000n + BigInt(input.u32());
  const reserved = input.u8();
  const data = input.bytes(input.u8() % 48);
  const header = new Uint8Array(24);
  const view = new DataView(header.buffer);
  view.setUint16(0, opcode, true);
  view.setUint16(2, groupType, true);
  header.fill(reserved, 4, 16);
  view.setBigUint64(16, member, true);
  let bytes = new Uint8Array(24 + data.length);
  bytes.set(header);
  bytes.set(data, 24);
  const cut = input.u8();
  if (cut < bytes.length) bytes = bytes.slice(0, cut);
  const split = Math.min(input.u8(), bytes.length);
  const writable = Array.from({ length: input.u8() % 4 }, () => input.u8() % 40);
  return { readable: [bytes.slice(0, split), bytes.slice(split)], writable };
}

/** The members' state a refused command must leave alone. */
function memberState(members: readonly VirtioPciFunction[]): string {
  return members.map((m) => `${m.core.status}/${m.core.driverFeatures}/${m.legacy!.read(14, 2)}`).join(' ');
}

export function run(data: Uint8Array): void {
  const input = new FuzzInput(data);
  const host = { memory: new ArrayGuestMemory(1 << 12), sendMsi() {}, setIntx() {} };
  const members = Array.from({ length: 1 + (input.u8() % 3) }, () => new VirtioPciFunction(new RngDevice(), host, { mode: 'legacy' }));
  // The members' LEGACY_NOTIFY_INFO addresses, placed as the PCI transport places them (BAR4 + 0x4000).
  const area = new LegacyNotifyArea(members.map((m) => m.legacy!));
  area.place({ bar: 4, offset: 0x4000 });
  const admin = new AdminVirtqueue({
    groups: [
      new SriovGroup(
        members.map((m) => m.legacy!),
        area,
      ),
    ],
  });
  // The guest (the mock) writes its chains unguarded; the device's ring sees the guarded memory.
  const memory = new GuardedMemory(MEM, { allowAllReads: true });
  const mq = new MockQueue({ size: QUEUE, memory: new ArrayGuestMemory(memory.inner.bytes, 0) });
  const queue = deviceRing({
    index: 0,
    size: QUEUE,
    memory,
    areas: { desc: mq.descAddr, driver: mq.availAddr, device: mq.usedAddr },
    features: 0n,
  });
  for (let n = 0; n < COMMANDS_PER_INPUT && !input.done; n++) {
    const op = input.u8() % 8;
    if (op === 0) {
      admin.reset();
      continue;
    }
    if (op === 2) {
      // A guest access to the notify area: any offset in it, any width; it never throws.
      const size = ([1, 2, 4] as const)[input.u8() % 3]!;
      const offset = (input.u8() | (input.u8() << 8)) % (area.size - size + 1);
      area.write(offset, size, input.u8() | (input.u8() << 8));
      check(area.read(offset, size) === 0, 'contract', () => `the notify area read non-zero at 0x${offset.toString(16)}`);
      continue;
    }
    const chain = op === 1 ? { readable: [listUse(input.u8() % 2, input.u8())], writable: [8] } : commandBytes(input);
    const head = mq.addChain(chain);
    const writable = mq.buffers(head).writable;
    memory.clearAllowed();
    memory.allowWrite(mq.usedAddr, usedRingSize(QUEUE), 'used ring');
    for (const span of writable) memory.allowWrite(span.addr, span.len, 'the chain writable buffers');
    memory.snapshot();
    const before = memberState(members);
    const served = expectTyped('admin serve', [QueueFaultError], () => admin.serve(queue));
    check(served === true, 'contract', () => `the chain was not answered: ${String(served)}`);
    const problems = memory.problems();
    check(
      problems.length === 0,
      'memory-outside',
      () => `${problems.length} access(es) outside, first at 0x${problems[0]!.addr.toString(16)}`,
    );
    const used = mq.readUsed();
    check(used.length === 1 && used[0]!.id === head, 'contract', () => `used ${JSON.stringify(used)} for chain ${head}`);
    const total = chain.writable.reduce((a, b) => a + b, 0);
    const len = used[0]!.len;
    check(len <= total, 'contract', () => `used length ${len} past ${total} writable bytes`);
    if (len < 4) continue;
    const answer = mq.readWritten(head, len);
    const status = answer[0]! | (answer[1]! << 8);
    const qualifier = answer[2]! | (answer[3]! << 8);
    check(
      status === 0 ? qualifier === 0 : status === 22 && qualifier >= 2 && qualifier <= 5,
      'contract',
      () => `status ${status} qualifier ${qualifier}`,
    );
    if (len >= 8)
      check(
        answer.subarray(4, 8).every((b) => b === 0),
        'contract',
        () => 'reserved2 not zero',
      );
    if (status === 22)
      check(memberState(members) === before, 'contract', () => `EINVAL changed a member: ${before} -> ${memberState(members)}`);
  }
}

/** A LIST_USE of the opcodes whose bits `bits` sets (0..7), for group type `groupType`. */
function listUse(groupType: number, bits: number): Uint8Array {
  const out = new Uint8Array(32);
  out[0] = 1;
  out[2] = groupType;
  out.set(encodeCommandList([0, 1, 2, 3, 4, 5, 6, 7].filter((op) => (bits & (1 << op)) !== 0)), 24);
  return out;
}

/** A command record for {@link commandBytes}. */
function command(opcode: number, groupType: number, member: number, data: number[], writable: number[], cut = 0xff): InputWriter {
  return new InputWriter()
    .u8(2)
    .u8(opcode)
    .u8([0, 1, 2, 0xffff].indexOf(groupType))
    .u8(member)
    .u8(0)
    .u8(data.length)
    .bytes(data)
    .u8(cut)
    .u8(0xff)
    .u8(writable.length)
    .bytes(writable);
}

export function seeds(): Seed[] {
  const join = (vfs: number, ...ops: InputWriter[]): Uint8Array => Uint8Array.from([vfs, ...ops.flatMap((o) => [...o.finish()])]);
  const useAll = new InputWriter().u8(1).u8(1).u8(0x3f);
  return [
    { name: 'list-query-both-groups', data: join(1, command(0, 0, 0, [], [16]), command(0, 1, 0, [], [16])) },
    { name: 'legacy-read-before-and-after-list-use', data: join(2, command(3, 1, 1, [18], [9]), useAll, command(3, 1, 1, [18], [9])) },
    {
      name: 'legacy-write-status-then-reset',
      data: join(
        2,
        useAll,
        command(2, 1, 2, [18, 0, 0, 0, 0, 0, 0, 0, 1], [8]),
        new InputWriter().u8(0),
        command(2, 1, 2, [18, 0, 0, 0, 0, 0, 0, 0, 1], [8]),
      ),
    },
    { name: 'truncated-and-tiny-writable', data: join(1, command(0, 1, 0, [], [2], 3), command(1, 0, 0, [], [0], 2)) },
    { name: 'member-out-of-range', data: join(3, useAll, command(5, 1, 4, [0], [9]), command(5, 1, 0, [0], [9])) },
  ];
}
