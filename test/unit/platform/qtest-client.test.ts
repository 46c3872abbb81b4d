import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BusError } from '../../../src/errors.js';
import { QtestClient, type QtestClientOptions } from '../../../src/platform/qtest/qtest-client.js';

/** A client connected to a scripted stand-in for QEMU: `peer` sees the client's bytes and answers. */
async function pair(
  options: Partial<QtestClientOptions> = {},
): Promise<{ client: QtestClient; peer: Socket; lines: () => Promise<string[]>; done: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'qtest-client-'));
  const path = join(dir, 'sock');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const socket = createConnection(path);
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const peer = await accepted;
  let received = '';
  peer.setEncoding('latin1');
  peer.on('data', (d: string) => (received += d));
  const client = new QtestClient(socket, { timeoutMs: 1000, ...options });
  return {
    client,
    peer,
    // Lines the client has sent so far (after letting queued writes reach the peer).
    lines: async () => {
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setTimeout(r, 20));
      return received.split('\n').filter(Boolean);
    },
    done: async () => {
      client.close();
      peer.destroy();
      server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Writes `text` one byte at a time: replies split at every possible boundary. */
async function trickle(peer: Socket, text: string): Promise<void> {
  for (const ch of text) {
    peer.write(ch);
    await new Promise((r) => setImmediate(r));
  }
}

test('pipelined commands go out together and replies, split anywhere, resolve in order', async () => {
  const { client, peer, lines, done } = await pair();
  try {
    const replies = Array.from({ length: 50 }, (_, i) => client.request(`readl 0x${i.toString(16)}`));
    const sent = await lines();
    assert.deepEqual(
      sent,
      Array.from({ length: 50 }, (_, i) => `readl 0x${i.toString(16)}`),
    );
    assert.equal(client.commandsSent, 50);
    const irqs: Array<[number, boolean]> = [];
    client.onIrq((line, raised) => irqs.push([line, raised]));
    // An IRQ line may come before the reply of the command that caused it.
    let text = '';
    for (let i = 0; i < 50; i++) text += (i === 3 ? 'IRQ raise 11\n' : '') + `OK 0x${i.toString(16).padStart(16, '0')}\n`;
    await trickle(peer, text);
    assert.deepEqual(
      await Promise.all(replies),
      Array.from({ length: 50 }, (_, i) => `0x${i.toString(16).padStart(16, '0')}`),
    );
    assert.deepEqual(irqs, [[11, true]]);
  } finally {
    await done();
  }
});

test('FAIL rejects its own command only; a failed posted write fails the next awaited command', async () => {
  const { client, peer, done } = await pair();
  try {
    const a = client.request('readb 0x0');
    const b = client.request('bogus');
    const c = client.request('readb 0x1');
    client.post('writeb 0x2 0x1');
    const d = client.request('readb 0x3');
    const e = client.request('readb 0x4');
    peer.write("OK 0x01\nFAIL Unknown command 'bogus'\nOK 0x02\nERR invalid argument size\nOK 0x03\nOK 0x04\n");
    assert.equal(await a, '0x01');
    await assert.rejects(b, (err: unknown) => err instanceof BusError && /bogus/.test(err.message));
    assert.equal(await c, '0x02');
    await assert.rejects(
      d,
      (err: unknown) => err instanceof BusError && /writeb 0x2 0x1/.test(err.message) && /ERR invalid argument size/.test(err.message),
    );
    assert.equal(await e, '0x04');
  } finally {
    await done();
  }
});

test('a command with no answer times out, and breaks the client for good', async () => {
  let broken: BusError | undefined;
  const { client, done } = await pair({ timeoutMs: 150, onBroken: (err) => (broken = err), describe: () => 'QEMU still running' });
  try {
    const started = Date.now();
    await assert.rejects(
      client.request('readl 0x0'),
      (err: unknown) => err instanceof BusError && /within 150 ms/.test(err.message) && /QEMU still running/.test(err.message),
    );
    assert.ok(Date.now() - started < 1000, 'the deadline is kept');
    assert.ok(broken instanceof BusError);
    await assert.rejects(client.request('readl 0x0'), BusError);
    assert.throws(() => client.post('writel 0x0 0x0'), BusError);
  } finally {
    await done();
  }
});

test('the peer closing, or a line outside the protocol, fails everything in flight', async () => {
  const closed = await pair();
  try {
    const pending = [closed.client.request('readl 0x0'), closed.client.request('readl 0x4')];
    closed.peer.end();
    for (const p of pending) await assert.rejects(p, (err: unknown) => err instanceof BusError && /closed/.test(err.message));
  } finally {
    await closed.done();
  }
  const garbled = await pair();
  try {
    const pending = garbled.client.request('readl 0x0');
    garbled.peer.write('Bail out! ERROR:qtest.c:470: assertion failed\n');
    await assert.rejects(pending, (err: unknown) => err instanceof BusError && /unexpected line/.test(err.message));
  } finally {
    await garbled.done();
  }
  const unasked = await pair();
  try {
    unasked.peer.write('OK\n');
    await new Promise((r) => setTimeout(r, 20));
    await assert.rejects(
      unasked.client.request('readl 0x0'),
      (err: unknown) => err instanceof BusError && /no command in flight/.test(err.message),
    );
  } finally {
    await unasked.done();
  }
});
