import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeConsoleControl, encodeConsoleControl } from '../../../src/device/console/control-message.js';
import { VirtioConsoleDevice } from '../../../src/device/console/console-device.js';
import * as C from '../../../src/spec/console.js';
import { bit, featureSet, hasFeature, VIRTIO_F_RING_PACKED, VIRTIO_F_VERSION_1 } from '../../../src/spec/features.js';
import { ArrayGuestMemory, RegionGuestMemory } from '../../../src/memory/guest-memory.js';
import { activateDevice, activateOnRing, RecordingHost, type DeviceHarness } from '../../helpers/device-harness.js';
import { MockQueue } from '../../../src/testing/mock-queue.js';
import type { MockRing } from '../../../src/testing/mock-ring.js';
import { mockRing, RING_FORMATS, type RingName } from '../../helpers/ring-formats.js';
import { streamBytePort } from '../../../src/device/console/port-streams.js';

const V1 = featureSet(VIRTIO_F_VERSION_1);
const MULTI = V1 | featureSet(C.VIRTIO_CONSOLE_F_MULTIPORT);
const CTRL_RX = C.VIRTIO_CONSOLE_CONTROL_RECEIVEQ;
const CTRL_TX = C.VIRTIO_CONSOLE_CONTROL_TRANSMITQ;
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A Writable that collects what it is given. */
function sink(): { stream: Writable; chunks: Buffer[] } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  return { stream, chunks };
}

/** The driver sends control messages on the control transmitq. */
function sendControl(h: DeviceHarness<MockRing>, dev: VirtioConsoleDevice, id: number, event: number, value: number): void {
  h.q(CTRL_TX).addChain({ readable: [encodeConsoleControl({ id, event, value })] });
  dev.queueNotify(CTRL_TX);
}

/** Control messages the device wrote into control receiveq buffers, in order. */
function receivedControl(h: DeviceHarness<MockRing>, heads: number[]): { id: number; event: number; value: number; data: Uint8Array }[] {
  const q = h.q(CTRL_RX);
  const lens = new Map<number, number>();
  const written = heads.map((head) => ({ head, bytes: q.readWritten(head, 64) }));
  for (const u of q.readUsed()) lens.set(u.id, u.len);
  return written
    .filter((w) => lens.has(w.head) && lens.get(w.head)! > 0)
    .map((w) => {
      const { msg, data } = decodeConsoleControl(w.bytes.subarray(0, lens.get(w.head)));
      return { ...msg, data: data.slice() };
    });
}

describe('virtio-console device: configuration', () => {
  it('lays out cols, rows and max_nr_ports at the 5.3.4 offsets and offers what it has', () => {
    const dev = new VirtioConsoleDevice({ ports: [{}, {}, {}], size: { cols: 132, rows: 43 } });
    assert.equal(dev.readConfig(C.VIRTIO_CONSOLE_CONFIG_COLS, 2), 132);
    assert.equal(dev.readConfig(C.VIRTIO_CONSOLE_CONFIG_ROWS, 2), 43);
    assert.equal(dev.readConfig(C.VIRTIO_CONSOLE_CONFIG_MAX_NR_PORTS, 4), 3);
    assert.equal(dev.configSize, 12);
    for (const b of [C.VIRTIO_CONSOLE_F_SIZE, C.VIRTIO_CONSOLE_F_MULTIPORT, C.VIRTIO_CONSOLE_F_EMERG_WRITE])
      assert.ok(hasFeature(dev.deviceFeatures, b));
    // Ports 0..2: queues 0,1 then the control pair 2,3, then 4..7.
    assert.equal(dev.queueMaxSizes.length, 8);
    const single = new VirtioConsoleDevice({ emergWrite: false });
    assert.equal(single.deviceFeatures, 0n);
    assert.equal(single.queueMaxSizes.length, 2);
  });

  it('writes emerg_wr bytes to port 0 at once, even before DRIVER_OK', () => {
    const out = sink();
    const dev = new VirtioConsoleDevice({ ports: [{ host: streamBytePort({ output: out.stream }) }] });
    for (const b of text('hi!')) dev.writeConfig(C.VIRTIO_CONSOLE_CONFIG_EMERG_WR, 4, b);
    assert.equal(Buffer.concat(out.chunks).toString(), 'hi!');
    assert.equal(dev.stats.emergBytes, 3);
  });

  it('changes the config size with a configuration change when single-port', () => {
    const dev = new VirtioConsoleDevice({ size: { cols: 80, rows: 25 } });
    const h = activateDevice(dev, V1 | featureSet(C.VIRTIO_CONSOLE_F_SIZE));
    dev.resize(100, 30);
    assert.equal(dev.readConfig(C.VIRTIO_CONSOLE_CONFIG_COLS, 2), 100);
    assert.equal(dev.readConfig(C.VIRTIO_CONSOLE_CONFIG_ROWS, 2), 30);
    assert.equal(h.host.configChanges, 1);
  });
});

for (const ring of RING_FORMATS)
  describe(`virtio-console device: data (${ring} ring)`, () => {
    it('moves guest output to the host stream, whatever the buffer split', async () => {
      const out = sink();
      const dev = new VirtioConsoleDevice({ ports: [{ host: streamBytePort({ output: out.stream }) }] });
      const h = activateOnRing(ring, dev, V1);
      const head = h.q(1).addChain({ readable: [text('hel'), text('lo '), text('world')] });
      dev.queueNotify(1);
      assert.deepEqual(h.q(1).readUsed(), [{ id: head, len: 0 }]);
      await tick();
      assert.equal(Buffer.concat(out.chunks).toString(), 'hello world');
    });

    it('holds host input until the guest gives buffers, pausing the stream meanwhile', async () => {
      const input = new PassThrough();
      const dev = new VirtioConsoleDevice({ ports: [{ host: streamBytePort({ input }) }] });
      const h = activateOnRing(ring, dev, V1);
      const q = h.q(0);
      input.write(text('0123456789'));
      await tick();
      assert.equal(input.isPaused(), true);
      assert.deepEqual(dev.port(0).waiting, text('0123456789'));
      const a = q.addChain({ writable: [4] });
      const b = q.addChain({ writable: [3] });
      dev.queueNotify(0);
      assert.deepEqual(q.readWritten(a, 4), text('0123'));
      assert.deepEqual(q.readWritten(b, 3), text('456'));
      assert.deepEqual(q.readUsed(), [
        { id: a, len: 4 },
        { id: b, len: 3 },
      ]);
      assert.equal(input.isPaused(), true, 'still bytes waiting');
      const c = q.addChain({ writable: [16] });
      dev.queueNotify(0);
      assert.deepEqual(q.readWritten(c, 3), text('789'));
      assert.deepEqual(q.readUsed(), [{ id: c, len: 3 }]);
      assert.equal(input.isPaused(), false, 'all delivered: input resumed');
      assert.equal(dev.stats.rxBytes, 10);
    });

    it('stops taking guest output while the host stream is full, and resumes on drain', async () => {
      const written: Buffer[] = [];
      let release: (() => void) | undefined;
      const output = new Writable({
        highWaterMark: 4,
        write(chunk: Buffer, _enc, cb) {
          written.push(chunk);
          release = cb; // the host reader is slow: complete only when the test says so
        },
      });
      const dev = new VirtioConsoleDevice({ ports: [{ host: streamBytePort({ output }) }] });
      const h = activateOnRing(ring, dev, V1);
      const q = h.q(1);
      const heads = ['aaaa', 'bbbb', 'cccc'].map((s) => q.addChain({ readable: [text(s)] }));
      dev.queueNotify(1);
      assert.deepEqual(q.readUsed(), [{ id: heads[0], len: 0 }], 'one chain taken, then the stream is full');
      release!();
      await tick();
      assert.deepEqual(
        q.readUsed().map((u) => u.id),
        [heads[1]],
      );
      release!();
      await tick();
      release!();
      await tick();
      assert.deepEqual(
        q.readUsed().map((u) => u.id),
        [heads[2]],
      );
      release!();
      await tick();
      assert.equal(Buffer.concat(written).toString(), 'aaaabbbbcccc');
    });
  });

for (const ring of RING_FORMATS)
  describe(`virtio-console device: transmit batches (${ring} ring)`, () => {
    /** Port 0's transmitq (queue 1) on `memory`, buffers placed with no gaps, so most are adjacent. */
    function txRig(
      memory: ArrayGuestMemory | RegionGuestMemory,
      format: RingName = ring,
    ): {
      dev: VirtioConsoleDevice;
      host: RecordingHost;
      q: MockRing;
      out: ReturnType<typeof sink>;
    } {
      const out = sink();
      const dev = new VirtioConsoleDevice({ ports: [{ host: streamBytePort({ output: out.stream }) }] });
      const regions = memory instanceof ArrayGuestMemory ? new RegionGuestMemory([memory]) : memory;
      const host = new RecordingHost(regions);
      const q = mockRing(format, { size: 16, memory, maxGap: 0 });
      dev.attach(host);
      const packed = format === 'packed' ? bit(VIRTIO_F_RING_PACKED) : 0n;
      dev.activate({ features: V1 | packed, queues: [null, q.deviceQueue({ index: 1 })] });
      return { dev, host, q, out };
    }

    it('hands on the bytes of adjacent and multi-buffer chains in order, without those of refused chains', () => {
      const { dev, host, q, out } = txRig(new ArrayGuestMemory(1 << 16));
      const heads = [
        q.addChain({ readable: [text('ab'), text('cd')] }),
        q.addChain({ readable: [text('ef')] }),
        q.addChain({ readable: [text('XX')], writable: [4] }), // refused: a device-writable buffer
        q.addChain({ readable: [text('gh'), text('i')] }),
      ];
      dev.queueNotify(1);
      assert.deepEqual(host.resets, []);
      assert.equal(Buffer.concat(out.chunks).toString(), 'abcdefghi');
      assert.equal(out.chunks.length, 1, 'one output write for the whole notification');
      assert.deepEqual(
        q.readUsed(),
        heads.map((id) => ({ id, len: 0 })),
        'every chain used, in avail order',
      );
      assert.equal(dev.stats.badChains, 1);
      assert.equal(dev.stats.txBytes, 9);
    });

    it('keeps every byte when batches outgrow the slab they are built in', () => {
      // The first chain fills most of the 256 KiB slab. The next batch starts behind it with a copied
      // run (the refused chain's buffers break it from the next) and must move to a new slab for the
      // 100 KiB chain; the 300 KiB one gets a slab of its own size.
      const { dev, host, q, out } = txRig(new ArrayGuestMemory(4 << 20));
      const bytes = (n: number, k: number): Uint8Array => new Uint8Array(n).map((_, i) => (i * 7 + k) & 0xff);
      const parts = [bytes(200 << 10, 1), bytes(100, 2), bytes(100, 3), bytes(100 << 10, 4), bytes(300 << 10, 5), bytes(7, 6)];
      const heads = [
        q.addChain({ readable: [parts[0]!] }),
        q.addChain({ readable: [parts[1]!] }),
        q.addChain({ readable: [text('XX')], writable: [4] }), // refused
        ...parts.slice(2).map((p) => q.addChain({ readable: [p] })),
      ];
      dev.queueNotify(1);
      assert.deepEqual(host.resets, []);
      assert.deepEqual(Buffer.concat(out.chunks), Buffer.concat(parts));
      assert.deepEqual(
        q.readUsed(),
        heads.map((id) => ({ id, len: 0 })),
      );
      assert.equal(dev.stats.badChains, 1);
    });

    // Placed by hand with the split ring's pokes.
    if (ring === 'split')
      it('copies buffers adjacent in address but in different memory regions separately', () => {
        const low = new ArrayGuestMemory(1 << 16, 0);
        const high = new ArrayGuestMemory(1 << 16, low.end);
        const { dev, host, q, out } = txRig(new RegionGuestMemory([low, high]), 'split');
        assert.ok(q instanceof MockQueue);
        // One buffer ending exactly at the boundary, the next starting there: one address run, two regions.
        q.memory.write(low.end - 2, text('xy'));
        q.memory.write(high.base, text('zw'));
        q.setDesc(0, { addr: low.end - 2, len: 2, flags: 0, next: 0 });
        q.setDesc(1, { addr: high.base, len: 2, flags: 0, next: 0 });
        q.pushAvail(0);
        q.pushAvail(1);
        dev.queueNotify(1);
        assert.deepEqual(host.resets, [], 'no fault for two valid buffers');
        assert.equal(Buffer.concat(out.chunks).toString(), 'xyzw');
        assert.deepEqual(q.readUsed(), [
          { id: 0, len: 0 },
          { id: 1, len: 0 },
        ]);
      });
  });

for (const ring of RING_FORMATS)
  describe(`virtio-console device: multiport control (${ring} ring)`, () => {
    it('adds ports on DEVICE_READY and describes each on PORT_READY', () => {
      const out = sink();
      const dev = new VirtioConsoleDevice({
        ports: [{ console: true, host: streamBytePort({ output: out.stream }) }, { name: 'org.test.port1' }],
      });
      const h = activateOnRing(ring, dev, MULTI);
      const heads = Array.from({ length: 8 }, () => h.q(CTRL_RX).addChain({ writable: [64] }));
      dev.queueNotify(CTRL_RX);
      sendControl(h, dev, 0, C.VIRTIO_CONSOLE_DEVICE_READY, 1);
      sendControl(h, dev, 0, C.VIRTIO_CONSOLE_PORT_READY, 1);
      sendControl(h, dev, 1, C.VIRTIO_CONSOLE_PORT_READY, 1);
      assert.deepEqual(receivedControl(h, heads), [
        { id: 0, event: C.VIRTIO_CONSOLE_DEVICE_ADD, value: 1, data: new Uint8Array(0) },
        { id: 1, event: C.VIRTIO_CONSOLE_DEVICE_ADD, value: 1, data: new Uint8Array(0) },
        { id: 0, event: C.VIRTIO_CONSOLE_CONSOLE_PORT, value: 1, data: new Uint8Array(0) },
        { id: 0, event: C.VIRTIO_CONSOLE_PORT_OPEN, value: 1, data: new Uint8Array(0) },
        { id: 1, event: C.VIRTIO_CONSOLE_PORT_NAME, value: 1, data: text('org.test.port1') },
      ]);
      // Data flows on port 1's queues (4, 5) only once the guest opens it.
      assert.equal(dev.port(1).guestOpen, false);
      sendControl(h, dev, 1, C.VIRTIO_CONSOLE_PORT_OPEN, 1);
      assert.equal(dev.port(1).guestOpen, true);
      assert.deepEqual(h.host.resets, []);
    });

    it('adds each port once: a second DEVICE_READY announces nothing again (5.3.6.2.1); after a reset it does', () => {
      const dev = new VirtioConsoleDevice({ ports: [{ console: true }, {}] });
      let h = activateOnRing(ring, dev, MULTI);
      let heads = Array.from({ length: 8 }, () => h.q(CTRL_RX).addChain({ writable: [64] }));
      sendControl(h, dev, 0, C.VIRTIO_CONSOLE_DEVICE_READY, 1);
      sendControl(h, dev, 0, C.VIRTIO_CONSOLE_DEVICE_READY, 1);
      const adds = (): number[] =>
        receivedControl(h, heads)
          .filter((m) => m.event === C.VIRTIO_CONSOLE_DEVICE_ADD)
          .map((m) => m.id);
      assert.deepEqual(adds(), [0, 1]);
      assert.deepEqual(h.host.resets, []);
      // A new life: the ports are new to the driver.
      dev.reset();
      h = activateOnRing(ring, dev, MULTI);
      heads = Array.from({ length: 8 }, () => h.q(CTRL_RX).addChain({ writable: [64] }));
      sendControl(h, dev, 0, C.VIRTIO_CONSOLE_DEVICE_READY, 1);
      assert.deepEqual(adds(), [0, 1]);
    });

    it('sends RESIZE for the console port with cols then rows', () => {
      const dev = new VirtioConsoleDevice({ ports: [{ console: true }, {}] });
      const h = activateOnRing(ring, dev, MULTI);
      const heads = Array.from({ length: 4 }, () => h.q(CTRL_RX).addChain({ writable: [64] }));
      sendControl(h, dev, 0, C.VIRTIO_CONSOLE_DEVICE_READY, 1);
      sendControl(h, dev, 0, C.VIRTIO_CONSOLE_PORT_READY, 1);
      dev.resize(120, 40);
      const resize = receivedControl(h, heads).find((m) => m.event === C.VIRTIO_CONSOLE_RESIZE);
      assert.ok(resize);
      assert.equal(resize.id, 0);
      assert.deepEqual([...resize.data], [120, 0, 40, 0]);
    });

    it('refuses malformed control messages and chains without stopping', () => {
      const dev = new VirtioConsoleDevice({ ports: [{}, {}] });
      const h = activateOnRing(ring, dev, MULTI);
      const q = h.q(CTRL_TX);
      q.addChain({ readable: [Uint8Array.of(1, 2, 3)] }); // shorter than virtio_console_control
      q.addChain({ readable: [encodeConsoleControl({ id: 9, event: C.VIRTIO_CONSOLE_PORT_OPEN, value: 1 })] }); // no port 9
      q.addChain({ readable: [encodeConsoleControl({ id: 0, event: C.VIRTIO_CONSOLE_DEVICE_ADD, value: 1 })] }); // a device-only event
      q.addChain({ readable: [encodeConsoleControl({ id: 1, event: C.VIRTIO_CONSOLE_PORT_OPEN, value: 1 })] });
      dev.queueNotify(CTRL_TX);
      assert.equal(q.readUsed().length, 4);
      assert.equal(dev.stats.badChains, 3);
      assert.equal(dev.port(1).guestOpen, true);
      // A transmit chain with device-writable buffers is refused, not fatal.
      h.q(5).addChain({ readable: [text('x')], writable: [4] });
      dev.queueNotify(5);
      assert.equal(dev.stats.badChains, 4);
      assert.deepEqual(h.host.resets, []);
    });

    // A ring fault forged with the split ring's pokes (the packed ring's faults: test/unit/queue/packed).
    if (ring === 'split')
      it('sets DEVICE_NEEDS_RESET on a ring fault', () => {
        const dev = new VirtioConsoleDevice({ ports: [{}, {}] });
        const h = activateDevice(dev, MULTI);
        const q = h.q(CTRL_TX);
        q.setAvailRing(0, q.size + 3); // a head index outside the table
        q.setAvailIdx(1);
        assert.doesNotThrow(() => dev.queueNotify(CTRL_TX));
        assert.equal(h.host.resets.length, 1);
        assert.equal((h.host.resets[0] as { code?: string }).code, 'ERR_QUEUE_HEAD_INDEX');
      });
  });

for (const ring of RING_FORMATS)
  describe(`virtio-console device: arbitrary chains (${ring} ring)`, () => {
    it('answers every control and transmit chain of any shape, never throwing', () => {
      fc.assert(
        fc.property(
          fc.array(
            fc.record({
              queue: fc.constantFrom(1, CTRL_TX, 5),
              readable: fc.array(fc.uint8Array({ minLength: 1, maxLength: 24 }), { maxLength: 3 }),
              writable: fc.array(fc.integer({ min: 1, max: 8 }), { maxLength: 2 }),
            }),
            { maxLength: 12 },
          ),
          (chains) => {
            const dev = new VirtioConsoleDevice({ ports: [{ console: true }, { name: 'p' }] });
            const h = activateOnRing(ring, dev, MULTI);
            const heads = new Map<number, number[]>([
              [1, []],
              [CTRL_TX, []],
              [5, []],
            ]);
            for (const c of chains) {
              const q = h.q(c.queue);
              const n = c.readable.length + c.writable.length;
              if (n === 0 || q.numFree < n) continue;
              heads.get(c.queue)!.push(q.addChain({ readable: c.readable, writable: c.writable }));
            }
            for (const index of heads.keys()) dev.queueNotify(index);
            assert.deepEqual(h.host.resets, []);
            for (const [index, expected] of heads) {
              assert.deepEqual(
                h
                  .q(index)
                  .readUsed()
                  .map((u) => u.id),
                expected,
              );
            }
          },
        ),
        { numRuns: 300 },
      );
    });
  });
