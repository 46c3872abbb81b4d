/**
 * The administration virtqueue, device side (2.12.1, 2.13), on mock rings: every hostile form of a
 * command (truncated, oversized, reserved fields set, unknown opcode or group type, member out of
 * range, before LIST_USE, after reset, device-writable part too short or too long) gets the
 * spec's status and status_qualifier, and any bytes at all get a well-formed answer.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MockQueue } from '../../../src/testing/mock-queue.js';
import { QueueFaultError } from '../../../src/errors.js';
import type { DeviceQueue } from '../../../src/queue/types.js';
import {
  encodeCommandList,
  VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ,
  VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_WRITE,
  VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_READ,
  VIRTIO_ADMIN_CMD_LEGACY_NOTIFY_INFO,
  VIRTIO_ADMIN_CMD_LIST_QUERY,
  VIRTIO_ADMIN_CMD_LIST_USE,
} from '../../../src/spec/admin.js';
import { VIRTIO_PCI_STATUS } from '../../../src/spec/virtio-pci.js';
import { makeAdmin, makeMembers } from './admin-fixture.js';
import { LegacyNotifyArea } from '../../../src/device/admin/legacy-notify-area.js';
import { SriovGroup } from '../../../src/device/admin/sriov-group.js';
import { AdminVirtqueue } from '../../../src/device/admin/admin-virtqueue.js';

const OK = [0, 0];
const INVALID = (q: number): number[] => [22, q];
const [Q_OPCODE, Q_FIELD, Q_GROUP, Q_MEMBER] = [2, 3, 4, 5];

/** struct virtio_admin_cmd's device-readable part. */
function cmd(opcode: number, groupType: number, member = 0n, data: Uint8Array = new Uint8Array(0), reserved = 0): Uint8Array {
  const out = new Uint8Array(24 + data.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, opcode, true);
  v.setUint16(2, groupType, true);
  out.fill(reserved, 4, 16);
  v.setBigUint64(16, member, true);
  out.set(data, 24);
  return out;
}

interface Answer {
  readonly status: number;
  readonly qualifier: number;
  readonly len: number;
  readonly written: Uint8Array;
}

class Rig {
  readonly mq = new MockQueue({ size: 16 });
  readonly queue: DeviceQueue = this.mq.deviceQueue();
  readonly members = makeMembers(2);
  readonly admin: AdminVirtqueue;

  /** With `notify`, the group publishes LEGACY_NOTIFY_INFO addresses (placed as the PCI transport would: BAR4 + 0x4000). */
  constructor(readonly notify = false) {
    if (!notify) this.admin = makeAdmin(this.members);
    else {
      const legacy = this.members.map((m) => m.fn.legacy!);
      const area = new LegacyNotifyArea(legacy);
      area.place({ bar: 4, offset: 0x4000 });
      this.admin = new AdminVirtqueue({ groups: [new SriovGroup(legacy, area)] });
    }
  }

  /** Queue `readable` (as given buffers) with writable buffers of `writable` bytes, serve, and read the answer. */
  send(readable: Uint8Array | Uint8Array[], writable: number[] = [64]): Answer {
    const head = this.mq.addChain({ readable: Array.isArray(readable) ? readable : [readable], writable });
    assert.equal(this.admin.serve(this.queue), true);
    const [used] = this.mq.readUsed();
    assert.equal(used!.id, head);
    const written = this.mq.readWritten(head, used!.len);
    const padded = new Uint8Array(4);
    padded.set(written.subarray(0, 4));
    const v = new DataView(padded.buffer);
    return { status: v.getUint16(0, true), qualifier: v.getUint16(2, true), len: used!.len, written };
  }
  sr(answer: Answer): number[] {
    return [answer.status, answer.qualifier];
  }
  /** LIST_USE every SR-IOV command. */
  useAll(): void {
    assert.deepEqual(
      this.sr(
        this.send(cmd(VIRTIO_ADMIN_CMD_LIST_USE, 1, 0n, encodeCommandList(this.notify ? [0, 1, 2, 3, 4, 5, 6] : [0, 1, 2, 3, 4, 5]))),
      ),
      OK,
    );
  }
}

test('LIST_QUERY: the list per group type, bits 0 and 1 always set; used length is what was written', () => {
  const rig = new Rig();
  const self = rig.send(cmd(VIRTIO_ADMIN_CMD_LIST_QUERY, 0));
  assert.deepEqual([...self.written], [0, 0, 0, 0, 0, 0, 0, 0, 0x03, 0, 0, 0, 0, 0, 0, 0]);
  const sriov = rig.send(cmd(VIRTIO_ADMIN_CMD_LIST_QUERY, 1));
  assert.deepEqual([sriov.len, sriov.written[8]], [16, 0x3f], 'opcodes 0..5, no LEGACY_NOTIFY_INFO (6)');
});

test('group type: reserved types, and SR-IOV on an owner without the group, are Q_INVALID_GROUP before anything else', () => {
  const rig = new Rig();
  for (const type of [2, 0x8000, 0xffff]) assert.deepEqual(rig.sr(rig.send(cmd(0x7777, type, 99n))), INVALID(Q_GROUP));
  const bare = makeAdmin(undefined);
  const mq = new MockQueue({ size: 4 });
  const head = mq.addChain({ readable: [cmd(VIRTIO_ADMIN_CMD_LIST_QUERY, 1)], writable: [8] });
  bare.serve(mq.deviceQueue());
  assert.deepEqual(mq.readUsed(), [{ id: head, len: 8 }]);
  assert.deepEqual([...mq.readWritten(head, 4)], [22, 0, Q_GROUP, 0], 'no SR-IOV group: Q_INVALID_GROUP');
});

test('opcode: unknown, unsupported (LEGACY_NOTIFY_INFO) and not yet in use are Q_INVALID_OPCODE; member checked only after', () => {
  const rig = new Rig();
  for (const op of [0x7000, 0x8000, 0xffff, VIRTIO_ADMIN_CMD_LEGACY_NOTIFY_INFO])
    assert.deepEqual(rig.sr(rig.send(cmd(op, 1, 1n))), INVALID(Q_OPCODE));
  assert.deepEqual(
    rig.sr(rig.send(cmd(VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ, 1, 99n, Uint8Array.of(18), 0), [9])),
    INVALID(Q_OPCODE),
    'before LIST_USE',
  );
  assert.deepEqual(
    rig.sr(rig.send(cmd(VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ, 0, 0n, Uint8Array.of(18)), [9])),
    INVALID(Q_OPCODE),
    'self group has none',
  );
  rig.useAll();
  for (const member of [0n, 3n, 2n ** 64n - 1n])
    assert.deepEqual(rig.sr(rig.send(cmd(VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ, 1, member, Uint8Array.of(18)), [9])), INVALID(Q_MEMBER));
});

test('LIST_USE: an unsupported opcode refuses the whole list (Q_INVALID_FIELD) and changes nothing; an empty list blocks even the list commands until reset', () => {
  const rig = new Rig();
  assert.deepEqual(rig.sr(rig.send(cmd(VIRTIO_ADMIN_CMD_LIST_USE, 1, 0n, encodeCommandList([0, 1, 3, 6])))), INVALID(Q_FIELD));
  assert.deepEqual(rig.sr(rig.send(cmd(VIRTIO_ADMIN_CMD_LIST_USE, 1, 0n, encodeCommandList([0, 1, 3, 64])))), INVALID(Q_FIELD));
  assert.deepEqual(rig.sr(rig.send(cmd(VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ, 1, 1n, Uint8Array.of(18)), [9])), INVALID(Q_OPCODE));
  // A longer list with zero words is the same list (2.12.1).
  const long = new Uint8Array(32);
  long.set(encodeCommandList([0, 1, 3]));
  assert.deepEqual(rig.sr(rig.send(cmd(VIRTIO_ADMIN_CMD_LIST_USE, 1, 0n, long))), OK);
  assert.deepEqual(rig.sr(rig.send(cmd(VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ, 1, 1n, Uint8Array.of(18)), [9])), OK);
  assert.deepEqual(
    rig.sr(rig.send(cmd(VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_WRITE, 1, 1n, Uint8Array.of(18, 0, 0, 0, 0, 0, 0, 0, 1)))),
    INVALID(Q_OPCODE),
    'not in the list used',
  );
  // A truncated LIST_USE (the 24-byte header cut to 2 bytes: group 0, no data) uses no command at all.
  assert.deepEqual(rig.sr(rig.send(Uint8Array.of(1, 0))), OK);
  assert.deepEqual(rig.sr(rig.send(cmd(VIRTIO_ADMIN_CMD_LIST_QUERY, 0))), INVALID(Q_OPCODE));
  rig.admin.reset();
  assert.deepEqual(rig.sr(rig.send(cmd(VIRTIO_ADMIN_CMD_LIST_QUERY, 0))), OK, 'reset: LIST_QUERY and LIST_USE in use again');
  assert.deepEqual(
    rig.sr(rig.send(cmd(VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ, 1, 1n, Uint8Array.of(18)), [9])),
    INVALID(Q_OPCODE),
    'reset: the SR-IOV list too',
  );
});

test('legacy access: one field only, inside the structure; reserved bytes ignored; data little-endian', () => {
  const rig = new Rig();
  rig.useAll();
  const [vf1] = rig.members;
  const write = (offset: number, data: number[], reserved = 0): number[] =>
    rig.sr(
      rig.send(
        cmd(
          VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_WRITE,
          1,
          1n,
          Uint8Array.of(offset, ...new Array<number>(7).fill(reserved), ...data),
          reserved,
        ),
      ),
    );
  assert.deepEqual(write(VIRTIO_PCI_STATUS, [1], 0xff), OK, 'reserved1 and reserved[7] set: ignored');
  assert.equal(vf1!.fn.core.status, 1);
  assert.deepEqual(write(VIRTIO_PCI_STATUS, [3, 0]), INVALID(Q_FIELD), 'two bytes into a one-byte field');
  assert.deepEqual(write(2, [0, 0, 0, 0]), INVALID(Q_FIELD), 'across host and guest features');
  assert.deepEqual(write(4, [0, 0, 0]), INVALID(Q_FIELD), 'three bytes');
  assert.deepEqual(write(20, [0, 0]), INVALID(Q_FIELD), 'MSI-X vector without MSI-X: device config starts at 20');
  assert.deepEqual(write(VIRTIO_PCI_STATUS, []), INVALID(Q_FIELD), 'no data');
  assert.equal(vf1!.fn.core.status, 1, 'refused writes changed nothing');
  const read = rig.send(cmd(VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_READ, 1, 1n, Uint8Array.of(4)), [8, 2, 2]);
  assert.deepEqual([...read.written], [0, 0, 0, 0, 0, 0, 0, 0, 0x14, 0x15, 0x16, 0x17], 'read length from the writable part, split anyhow');
  assert.deepEqual(
    rig.sr(rig.send(cmd(VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_READ, 1, 1n, Uint8Array.of(4)), [8 + 8])),
    INVALID(Q_FIELD),
    '8 bytes',
  );
});

test('writable part: too short keeps what fits (status first), none gets a used length of 0; longer is left alone', () => {
  const rig = new Rig();
  const short = rig.send(cmd(0x7000, 0), [2]);
  assert.deepEqual([short.len, short.status], [2, 22]);
  const none = rig.send(cmd(VIRTIO_ADMIN_CMD_LIST_QUERY, 0), []);
  assert.equal(none.len, 0);
  const long = rig.send(cmd(VIRTIO_ADMIN_CMD_LIST_QUERY, 0), [4, 4, 100]);
  assert.equal(long.len, 16, 'header and the 8-byte list only');
  const empty = rig.send(new Uint8Array(0), [16]);
  assert.deepEqual([rig.sr(empty), empty.len], [OK, 16], 'no readable bytes: all fields zero, LIST_QUERY of the self group');
  const oversized = rig.send([cmd(VIRTIO_ADMIN_CMD_LIST_QUERY, 0, 0n, new Uint8Array(9000).fill(0xff))], [16]);
  assert.deepEqual(rig.sr(oversized), OK, 'data past what the command uses is ignored');
});

test('a chain the ring cannot give is a typed fault, not an answer', () => {
  const rig = new Rig();
  const broken: DeviceQueue = {
    ...rig.queue,
    pop: () => {
      throw new QueueFaultError('ERR_QUEUE_CHAIN_TOO_LONG', 2, 'loop');
    },
  };
  assert.throws(() => rig.admin.serve(broken), QueueFaultError);
});

const arbitraryCommand = fc.record({
  opcode: fc.oneof({ arbitrary: fc.integer({ min: 0, max: 7 }), weight: 4 }, { arbitrary: fc.integer({ min: 0, max: 0xffff }), weight: 1 }),
  groupType: fc.oneof({ arbitrary: fc.constantFrom(0, 1), weight: 4 }, { arbitrary: fc.integer({ min: 0, max: 0xffff }), weight: 1 }),
  member: fc.oneof(
    { arbitrary: fc.bigInt({ min: 0n, max: 3n }), weight: 3 },
    { arbitrary: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), weight: 1 },
  ),
  data: fc.uint8Array({ maxLength: 40 }),
  reserved: fc.constantFrom(0, 0xff),
  /** Cut the readable part short (or not: -1). */
  cutAt: fc.oneof({ arbitrary: fc.constant(-1), weight: 3 }, { arbitrary: fc.integer({ min: 0, max: 70 }), weight: 1 }),
  readableSplit: fc.integer({ min: 0, max: 70 }),
  writable: fc.array(fc.integer({ min: 0, max: 24 }), { maxLength: 3 }),
});

test('property: any command sequence gets well-formed answers; EINVAL never changes a member', () => {
  fc.assert(
    fc.property(
      fc.boolean(),
      fc.boolean(),
      fc.array(arbitraryCommand, { minLength: 1, maxLength: 12 }),
      (notify, useAllFirst, commands) => {
        const rig = new Rig(notify);
        if (useAllFirst) rig.useAll();
        for (const c of commands) {
          let bytes = cmd(c.opcode, c.groupType, c.member, c.data, c.reserved);
          if (c.cutAt >= 0) bytes = bytes.slice(0, c.cutAt);
          const split = Math.min(c.readableSplit, bytes.length);
          const before = rig.members.map((m) => [m.fn.core.status, m.fn.core.driverFeatures, [...m.device.config]]);
          const writableBytes = c.writable.reduce((a, b) => a + b, 0);
          const a = rig.send([bytes.slice(0, split), bytes.slice(split)], c.writable);
          assert.ok(a.len <= writableBytes && a.len === Math.min(writableBytes, a.len));
          if (a.len >= 4) {
            assert.ok(a.status === 0 || a.status === 22, `status ${a.status}`);
            if (a.status === 0) assert.equal(a.qualifier, 0);
            else assert.ok([Q_OPCODE, Q_FIELD, Q_GROUP, Q_MEMBER].includes(a.qualifier), `qualifier ${a.qualifier}`);
            const groupType = bytes.length >= 4 ? c.groupType : 0;
            if (groupType > 1) assert.equal(a.qualifier, Q_GROUP);
            if (a.status === 22)
              assert.deepEqual(
                rig.members.map((m) => [m.fn.core.status, m.fn.core.driverFeatures, [...m.device.config]]),
                before,
              );
          }
          if (a.len >= 8) assert.deepEqual([...a.written.subarray(4, 8)], [0, 0, 0, 0], 'reserved2 zero');
          // A successful LEGACY_NOTIFY_INFO: the member's own 2-byte aligned address in BAR4, then zeroes (flags 0), cut at the buffer.
          if (a.len > 8 && a.status === 0 && c.opcode === 6 && bytes.length >= 24) {
            const expected = new Uint8Array(64);
            expected.set([1, 4]);
            new DataView(expected.buffer).setBigUint64(8, 0x4000n + 2n * (c.member - 1n), true);
            assert.deepEqual([...a.written.subarray(8)], [...expected.subarray(0, a.len - 8)]);
          }
        }
      },
    ),
    { numRuns: 300 },
  );
});
