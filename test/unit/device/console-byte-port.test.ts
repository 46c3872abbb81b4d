/**
 * The console device's byte port without Node streams: the host end as a plain object, as an
 * emulator in a browser would give it.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConsoleBytePort, ConsolePortLink } from '../../../src/device/console/byte-port.js';
import { VirtioConsoleDevice } from '../../../src/device/console/console-device.js';
import { encodeConsoleControl, decodeConsoleControl } from '../../../src/device/console/control-message.js';
import * as C from '../../../src/spec/console.js';
import { featureSet, VIRTIO_F_VERSION_1 } from '../../../src/spec/features.js';
import { activateDevice } from '../../helpers/device-harness.js';

const V1 = featureSet(VIRTIO_F_VERSION_1);
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A host end that records writes, says it is full once `capacity` bytes are held, and counts resumes. */
class ArrayPort implements ConsoleBytePort {
  link: ConsolePortLink | undefined;
  readonly written: Uint8Array[] = [];
  held = 0;
  resumes = 0;
  constructor(readonly capacity: number) {}
  open(link: ConsolePortLink): void {
    this.link = link;
  }
  write(bytes: Uint8Array): boolean {
    this.written.push(bytes);
    this.held += bytes.byteLength;
    return this.held < this.capacity;
  }
  room(): number {
    return this.capacity - this.held;
  }
  resume(): void {
    this.resumes++;
  }
  /** The host consumed everything it held. */
  drain(): void {
    this.held = 0;
    this.link!.drained();
  }
}

const joined = (chunks: Uint8Array[]): string => chunks.map((c) => new TextDecoder().decode(c)).join('');

describe('virtio-console device: byte port', () => {
  it('writes guest output in batches bounded by room(), stops when full and resumes on drained()', () => {
    const port = new ArrayPort(8);
    const dev = new VirtioConsoleDevice({ ports: [{ host: port }] });
    const h = activateDevice(dev, V1);
    const q = h.q(1);
    const heads = ['abcd', 'efgh', 'ijkl', 'mnop'].map((s) => q.addChain({ readable: [text(s)] }));
    dev.queueNotify(1);
    // Room 8: the first batch is two chains, and then the port is full.
    assert.deepEqual(
      port.written.map((c) => c.byteLength),
      [8],
    );
    assert.deepEqual(
      q.readUsed().map((u) => u.id),
      heads.slice(0, 2),
    );
    assert.equal(dev.port(0).canWrite, false);
    port.drain();
    assert.equal(joined(port.written), 'abcdefghijklmnop');
    assert.deepEqual(
      q.readUsed().map((u) => u.id),
      heads.slice(2),
    );
    assert.equal(dev.stats.txBytes, 16);
  });

  it('delivers host bytes into guest buffers and calls resume() once all are taken', () => {
    const port = new ArrayPort(Infinity);
    const dev = new VirtioConsoleDevice({ ports: [{ host: port }] });
    const h = activateDevice(dev, V1);
    const q = h.q(0);
    port.link!.deliver(text('0123456'));
    const a = q.addChain({ writable: [4] });
    dev.queueNotify(0);
    assert.deepEqual(q.readWritten(a, 4), text('0123'));
    assert.equal(port.resumes, 0, 'bytes still waiting');
    const b = q.addChain({ writable: [8] });
    dev.queueNotify(0);
    assert.deepEqual(q.readWritten(b, 3), text('456'));
    assert.deepEqual(q.readUsed(), [
      { id: a, len: 4 },
      { id: b, len: 3 },
    ]);
    assert.equal(port.resumes, 1);
  });

  it('discards and counts guest output once the host end is disconnected, and tells a multiport driver', () => {
    const port = new ArrayPort(Infinity);
    const dev = new VirtioConsoleDevice({ ports: [{}, { host: port }] });
    const h = activateDevice(dev, V1 | featureSet(C.VIRTIO_CONSOLE_F_MULTIPORT));
    const ctrlRx = h.q(C.VIRTIO_CONSOLE_CONTROL_RECEIVEQ);
    const rx = [0, 1, 2, 3].map(() => ctrlRx.addChain({ writable: [64] }));
    const ctrlTx = h.q(C.VIRTIO_CONSOLE_CONTROL_TRANSMITQ);
    ctrlTx.addChain({ readable: [encodeConsoleControl({ id: 1, event: C.VIRTIO_CONSOLE_PORT_READY, value: 1 })] });
    ctrlTx.addChain({ readable: [encodeConsoleControl({ id: 1, event: C.VIRTIO_CONSOLE_PORT_OPEN, value: 1 })] });
    dev.queueNotify(C.VIRTIO_CONSOLE_CONTROL_TRANSMITQ);
    ctrlRx.readUsed();
    port.link!.disconnected();
    const [used] = ctrlRx.readUsed();
    assert.ok(used);
    const { msg } = decodeConsoleControl(ctrlRx.readWritten(used.id, used.len));
    assert.deepEqual(msg, { id: 1, event: C.VIRTIO_CONSOLE_PORT_OPEN, value: 0 });
    assert.ok(rx.includes(used.id));
    const tx = h.q(C.VIRTIO_CONSOLE_CONTROL_TRANSMITQ + 2);
    tx.addChain({ readable: [text('lost')] });
    dev.queueNotify(C.VIRTIO_CONSOLE_CONTROL_TRANSMITQ + 2);
    assert.equal(port.written.length, 0);
    assert.equal(dev.port(1).discarded, 4);
  });
});
