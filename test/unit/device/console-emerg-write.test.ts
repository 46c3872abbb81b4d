/**
 * emerg_wr (5.3.4) against a host that stops reading: a config write cannot wait, so the bytes that
 * meet a full output are dropped and counted, and what the device queues for the host stays bounded
 * by the stream's high-water mark, as on the transmitq. What gets through is the guest's bytes, in order.
 */

import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { VirtioConsoleDevice } from '../../../src/device/console/console-device.js';
import * as C from '../../../src/spec/console.js';
import { featureSet, VIRTIO_F_VERSION_1 } from '../../../src/spec/features.js';
import { activateDevice } from '../../helpers/device-harness.js';
import { streamBytePort } from '../../../src/device/console/port-streams.js';

const HIGH_WATER = 4096;
const WRITES = 1_000_000;

/** A host output that takes the first write into its sink and then never completes one: it never drains. */
function stuckOutput(): { stream: Writable; taken: number[] } {
  const taken: number[] = [];
  const stream = new Writable({
    highWaterMark: HIGH_WATER,
    write(chunk: Buffer) {
      taken.push(...chunk);
    },
  });
  return { stream, taken };
}

describe('virtio-console device: emergency write back-pressure', () => {
  for (const when of ['before DRIVER_OK', 'while live'] as const) {
    it(`a million emerg_wr writes against a host stream that never drains keep the queued bytes bounded (${when})`, () => {
      const out = stuckOutput();
      const dev = new VirtioConsoleDevice({ ports: [{ host: streamBytePort({ output: out.stream }) }] });
      if (when === 'while live') activateDevice(dev, featureSet(VIRTIO_F_VERSION_1) | featureSet(C.VIRTIO_CONSOLE_F_EMERG_WRITE));
      for (let i = 0; i < WRITES; i++) dev.writeConfig(C.VIRTIO_CONSOLE_CONFIG_EMERG_WR, 4, 0x100 | (i & 0xff));
      // Bytes the device handed to the host side and the host has not consumed (the write in progress included).
      const queued = out.stream.writableLength;
      assert.ok(queued <= HIGH_WATER, `${queued} bytes queued for the host`);
      assert.equal(dev.stats.emergBytes, queued, 'every byte handed on is counted');
      assert.equal(dev.stats.emergBytes + dev.stats.emergDropped, WRITES, 'every other byte is counted as dropped');
      // The first bytes went out, low byte only, in order.
      assert.deepEqual(out.taken, [0]);
      assert.equal(dev.port(0).canWrite, false);
    });
  }

  it('emergency bytes flow again once the host drains', async () => {
    const chunks: Buffer[] = [];
    let release: (() => void) | undefined;
    const stream = new Writable({
      highWaterMark: 2,
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk);
        release = cb;
      },
    });
    const dev = new VirtioConsoleDevice({ ports: [{ host: streamBytePort({ output: stream }) }] });
    for (const b of [0x61, 0x62, 0x63, 0x64]) dev.writeConfig(C.VIRTIO_CONSOLE_CONFIG_EMERG_WR, 4, b);
    assert.deepEqual([dev.stats.emergBytes, dev.stats.emergDropped], [2, 2], 'the third and fourth met a full output');
    // The host reads everything queued: 'drain', and the next byte is taken.
    while (release) {
      const cb = release;
      release = undefined;
      cb();
      await new Promise((r) => setImmediate(r));
    }
    dev.writeConfig(C.VIRTIO_CONSOLE_CONFIG_EMERG_WR, 4, 0x65);
    await new Promise((r) => setImmediate(r));
    assert.equal(Buffer.concat(chunks).toString(), 'abe');
    assert.deepEqual([dev.stats.emergBytes, dev.stats.emergDropped], [3, 2]);
  });
});
