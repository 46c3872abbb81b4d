/** Family 'admin', the administration virtqueue's device requirements (spec 2.13.1): part lengths, status, order. */

import {
  encodeCommandList,
  VIRTIO_ADMIN_CMD_LIST_QUERY,
  VIRTIO_ADMIN_CMD_LIST_USE,
  VIRTIO_ADMIN_STATUS_OK,
  VIRTIO_ADMIN_STATUS_Q_INVALID_OPCODE,
} from '../../spec/admin.js';
import type { Statement } from '../statement.js';
import { deviceStatements } from './define.js';
import { hex, need } from '../exchange.js';
import { adminCommand, adminSession, describeReply, needInvalid, offersAdmin, readReply, sendAdmin, someGroup } from '../admin-session.js';

const device = deviceStatements('admin');
const applies = offersAdmin;

export const adminQueueStatements: readonly Statement[] = [
  // 2.13.1: the administration virtqueue.
  device(
    'vq-short-parts',
    '2.13.1',
    'MUST',
    'Parts shorter than the structure work: missing readable bytes read as zero, writes past the writable part are dropped.',
    {
      check: {
        applies,
        async run(ctx) {
          const session = await adminSession(ctx);
          const [type, list] = await someGroup(ctx, session);
          const short = await sendAdmin(session, adminCommand(VIRTIO_ADMIN_CMD_LIST_QUERY, type).subarray(0, 4), [8 + 64]);
          need(ctx, short.status === VIRTIO_ADMIN_STATUS_OK, `LIST_QUERY for group ${type} in 4 readable bytes: ${describeReply(short)}`);
          const tiny = await sendAdmin(session, adminCommand(VIRTIO_ADMIN_CMD_LIST_QUERY, type), [4]);
          need(
            ctx,
            tiny.usedLen <= 4 && tiny.status === VIRTIO_ADMIN_STATUS_OK && tiny.beyond[0]!.every((b) => b === 0xa5),
            `LIST_QUERY into 4 writable bytes: ${describeReply(tiny)}, after them ${hex(tiny.beyond[0]!)} (list [${list.join(', ')}])`,
          );
        },
      },
    },
  ),
  device(
    'vq-long-parts',
    '2.13.1',
    'MUST',
    'Parts longer than the structure work: extra readable bytes are ignored, and the used length is what was written.',
    {
      check: {
        applies,
        async run(ctx) {
          const session = await adminSession(ctx);
          const [type, list] = await someGroup(ctx, session);
          const reply = await sendAdmin(
            session,
            [adminCommand(VIRTIO_ADMIN_CMD_LIST_QUERY, type), new Uint8Array(256).fill(0xff)],
            [8 + 512],
          );
          need(ctx, reply.status === VIRTIO_ADMIN_STATUS_OK, `LIST_QUERY with 256 extra readable bytes: ${describeReply(reply)}`);
          const untouched = reply.written.subarray(reply.usedLen).every((b) => b === 0xa5);
          need(
            ctx,
            untouched,
            `bytes past the used length ${reply.usedLen} were written: ${hex(reply.written.subarray(reply.usedLen))} (list [${list.join(', ')}])`,
          );
        },
      },
    },
  ),
  device(
    'vq-no-fail-on-length',
    '2.13.1',
    'MUST NOT',
    'A command never fails only because its parts are shorter or longer than the structure.',
    {
      check: {
        applies,
        async run(ctx) {
          const session = await adminSession(ctx);
          const [type] = await someGroup(ctx, session);
          for (const [extra, writable] of [
            [1, 9],
            [7, 13],
            [100, 1000],
            [0, 16],
          ] as const) {
            const reply = await sendAdmin(session, [adminCommand(VIRTIO_ADMIN_CMD_LIST_QUERY, type), new Uint8Array(extra)], [writable]);
            need(
              ctx,
              reply.status === VIRTIO_ADMIN_STATUS_OK,
              `LIST_QUERY with ${extra} extra readable and ${writable} writable bytes: ${describeReply(reply)}`,
            );
          }
        },
      },
    },
  ),
  device(
    'vq-initialize-writable',
    '2.13.1',
    'SHOULD',
    'The device fills the writable part up to the structure or the buffer, zeros included.',
    {
      uncheckable:
        "the structure's length is the device's own (a command list may carry zero words), so where 'up to the structure' ends is not known from outside",
    },
  ),
  device('vq-writable-multiple-of-8', '2.13.1', 'MUST', 'The device initialises the device-writable part, a multiple of 64 bits in size.', {
    uncheckable:
      'ambiguous (which part "is a multiple of 64 bit"); status and status_qualifier are held to admin/vq-initialize-status and the used length to admin/vq-long-parts',
  }),
  device('vq-initialize-status', '2.13.1', 'MUST', 'The device writes status and status_qualifier of every command.', {
    check: {
      applies,
      async run(ctx) {
        const reply = await sendAdmin(await adminSession(ctx), adminCommand(VIRTIO_ADMIN_CMD_LIST_QUERY, 0xffff), [8]);
        need(
          ctx,
          reply.usedLen >= 4 && reply.written[0] !== 0xa5 && reply.written[2] !== 0xa5,
          `a refused command: ${describeReply(reply)}`,
        );
      },
    },
  }),
  device('vq-in-order', '2.13.1', 'MUST', 'Commands on one administration queue are processed in the order they were queued.', {
    check: {
      applies,
      async run(ctx) {
        const session = await adminSession(ctx);
        const [type] = await someGroup(ctx, session);
        const dma = session.driver.bus.dma;
        // LIST_USE of LIST_USE alone, then LIST_QUERY, made available together: in order, the second is refused.
        const parts = [
          adminCommand(VIRTIO_ADMIN_CMD_LIST_USE, type, 0n, encodeCommandList([VIRTIO_ADMIN_CMD_LIST_USE])),
          adminCommand(VIRTIO_ADMIN_CMD_LIST_QUERY, type),
        ];
        const bufs = parts.map((p) => [dma.alloc(p.length, 8), dma.alloc(8 + 64, 8)] as const);
        for (const [i, [out, inn]] of bufs.entries()) {
          out.bytes.set(parts[i]!);
          inn.bytes.fill(0xa5);
          await dma.flush(out.addr, out.bytes.length);
          await dma.flush(inn.addr, inn.bytes.length);
          session.queue.submit([{ addr: out.addr, len: parts[i]!.length }], [{ addr: inn.addr, len: 8 + 64 }], i);
        }
        await session.queue.kick();
        const used = new Map<number, number>();
        while (used.size < 2) for (const done of await session.queue.waitUsed()) used.set(done.token, done.len);
        const replies = bufs.map(([, inn], i) => readReply(used.get(i)!, inn.bytes.slice(), []));
        need(ctx, replies[0]!.status === VIRTIO_ADMIN_STATUS_OK, `the LIST_USE queued first: ${describeReply(replies[0]!)}`);
        needInvalid(ctx, replies[1]!, VIRTIO_ADMIN_STATUS_Q_INVALID_OPCODE, 'the LIST_QUERY queued after it');
      },
    },
  }),
  device('vq-eagain-no-side-effect', '2.13.1', 'MUST', 'A command answered EAGAIN or ENOMEM has no side effect.', {
    uncheckable: 'a driver cannot make a device run out of resources or ask for a retry',
  }),
];
