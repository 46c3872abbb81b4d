import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { SavedStateStore, savedStateKey, type SavedStateRecord } from '../../../src/platform/v86/saved-state.js';

const dir = mkdtempSync(join(tmpdir(), 'virtio-ts-states-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const inputs = {
  manifest: 'kernel=6.1',
  cmdline: 'console=ttyS0',
  memoryBytes: 128 << 20,
  devices: [{ devfn: 0x68, config: [0xf4, 0x1a], bars: [] }],
};

test('the key changes with anything the guest saw at boot', () => {
  const key = savedStateKey(inputs);
  assert.match(key, /^[0-9a-f]{24}$/);
  assert.equal(savedStateKey({ ...inputs }), key);
  assert.notEqual(savedStateKey({ ...inputs, cmdline: 'console=ttyS0 quiet' }), key);
  assert.notEqual(savedStateKey({ ...inputs, devices: [{ devfn: 0x70, config: [0xf4, 0x1a], bars: [] }] }), key);
  assert.notEqual(savedStateKey({ ...inputs, devices: [{ devfn: 0x68, config: [0xf4, 0x1b], bars: [] }] }), key);
});

test('a saved state loads back with its record; a truncated or foreign file does not', () => {
  const store = new SavedStateStore(dir);
  const record: SavedStateRecord = { key: 'k1', devices: [{ devfn: 0x68, configWrites: [[4, 2, 7]], config: [1, 2, 3] }] };
  store.save(record, Uint8Array.of(9, 8, 7).buffer);
  const loaded = store.load('k1');
  assert.deepEqual(loaded?.record, record);
  assert.deepEqual([...new Uint8Array(loaded.state)], [9, 8, 7]);
  assert.equal(store.load('missing'), undefined);
  writeFileSync(join(dir, 'k2.state'), Uint8Array.of(0xff, 0xff, 0, 0, 1));
  assert.equal(store.load('k2'), undefined, 'JSON length beyond the file');
  store.save({ ...record, key: 'k3' }, new ArrayBuffer(0));
  copyFileSync(join(dir, 'k3.state'), join(dir, 'k4.state'));
  assert.equal(store.load('k4'), undefined, 'a record under another key');
});

test('one caller claims the boot; the others wait and get its state', async () => {
  const store = new SavedStateStore(dir);
  assert.equal(await store.loadOrClaim('k5', 5000), true);
  const waiting = store.loadOrClaim('k5', 5000);
  store.save({ key: 'k5', devices: [] }, Uint8Array.of(1).buffer);
  store.release('k5');
  const got = await waiting;
  assert.ok(typeof got === 'object');
  assert.deepEqual([...new Uint8Array(got.state)], [1]);
});

test('a claim left behind stops no one for longer than the timeout', async () => {
  const store = new SavedStateStore(dir);
  assert.equal(await store.loadOrClaim('k6', 5000), true);
  const t0 = Date.now();
  assert.equal(await store.loadOrClaim('k6', 300), false);
  assert.ok(Date.now() - t0 < 3000);
});
