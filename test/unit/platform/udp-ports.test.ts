import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { BusError } from '../../../src/errors.js';
import { freeUdpPort, withFreeUdpPorts } from '../../../src/platform/qtest/udp-ports.js';

const CLASH = new BusError("QEMU did not start; its stderr: -netdev socket: can't bind ip=127.0.0.1 to socket: Address already in use");

test('freeUdpPort: a port that can be bound right after', async () => {
  const port = await freeUdpPort();
  assert.ok(port > 0 && port < 65536);
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, '127.0.0.1', () => resolve());
  });
  await new Promise<void>((resolve) => socket.close(() => resolve()));
});

test('withFreeUdpPorts: a start that lost its picked port to another process is retried with new picks', async () => {
  const picks: number[][] = [];
  const result = await withFreeUdpPorts(async (pickPort) => {
    picks.push([await pickPort(), await pickPort()]);
    if (picks.length < 3) throw CLASH;
    return 'started';
  });
  assert.equal(result, 'started');
  assert.equal(picks.length, 3);
});

test('withFreeUdpPorts: other failures, and clashes over ports the caller chose, are not retried', async () => {
  let starts = 0;
  await assert.rejects(
    withFreeUdpPorts(async (pickPort) => {
      starts++;
      await pickPort();
      throw new BusError('QEMU did not start; its stderr: Property not found');
    }),
    /Property not found/,
  );
  assert.equal(starts, 1);
  starts = 0;
  await assert.rejects(
    withFreeUdpPorts(async () => {
      starts++;
      throw CLASH;
    }),
    /Address already in use/,
  );
  assert.equal(starts, 1);
});

test('withFreeUdpPorts: gives up after five clashes and reports the last', async () => {
  let starts = 0;
  await assert.rejects(
    withFreeUdpPorts(async (pickPort) => {
      starts++;
      await pickPort();
      throw CLASH;
    }),
    (err: unknown) => err instanceof BusError && err.code === 'ERR_BUS',
  );
  assert.equal(starts, 5);
});
