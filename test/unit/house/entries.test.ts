// The package's entry points, imported by name through package.json's "exports" (as a user would):
// each gives what its platform holds, the main entry none of the Node-only parts, and the
// virtio-ts/testing example runs as written.
import { test } from 'node:test';
import assert from 'node:assert/strict';

test('entries: virtio-ts is the device half, the driver half and the in-process machine, with no Node-only part', async () => {
  const main = await import('virtio-ts');
  for (const name of [
    'VirtioPciFunction',
    'SplitQueue',
    'VirtioConsoleDevice',
    'MemoryBlockBackend',
    'webCryptoEntropy',
    'VirtioDriver',
    'Machine',
    'ArrayGuestMemory',
    'UsageError',
  ]) {
    assert.equal(typeof (main as Record<string, unknown>)[name], 'function', name);
  }
  for (const name of [
    'FileBlockBackend',
    'StreamNetBackend',
    'DgramNetBackend',
    'streamBytePort',
    'QtestPciBus',
    'V86PciAdapter',
    'LinuxGuest',
    'MockQueue',
  ]) {
    assert.equal(name in main, false, `${name} is not in the main entry`);
  }
});

test('entries: virtio-ts/node, /qemu, /v86, /v86/node and /testing hold the platform parts', async () => {
  const entries: Record<string, string[]> = {
    'virtio-ts/node': [
      'FileBlockBackend',
      'StreamNetBackend',
      'DgramNetBackend',
      'streamBytePort',
      'filePortStreams',
      'socketPortStreams',
      'stdioPortStreams',
    ],
    'virtio-ts/qemu': ['QtestPciBus', 'QemuProcess', 'findQemu'],
    'virtio-ts/v86': ['V86PciAdapter', 'seabiosMemoryMap', 'parseDone'],
    'virtio-ts/v86/node': ['LinuxGuest', 'V86DriverBus', 'findGuestAssets'],
    'virtio-ts/testing': ['MockQueue', 'GuardedMemory', 'ConfigSpaceBuilder', 'FakePciBus', 'RecordingBus'],
  };
  for (const [entry, names] of Object.entries(entries)) {
    const mod = (await import(entry)) as Record<string, unknown>;
    for (const name of names) assert.equal(typeof mod[name], 'function', `${entry} exports ${name}`);
  }
});

test('entries: virtio-ts/v86 (browser-safe) holds none of the Node-only v86 parts', async () => {
  const v86 = (await import('virtio-ts/v86')) as Record<string, unknown>;
  for (const name of ['LinuxGuest', 'V86DriverBus', 'findGuestAssets', 'buildGuestAssets'])
    assert.equal(name in v86, false, `${name} is not in virtio-ts/v86`);
});

test('entries: deep imports are not part of the API', async () => {
  // A variable, so that the compiler does not resolve it either.
  const deep = 'virtio-ts/dist/src/device/console/console-device.js';
  await assert.rejects(import(deep), { code: 'ERR_PACKAGE_PATH_NOT_EXPORTED' });
});

test("entries: virtio-ts/testing's documented example", async () => {
  const { MockQueue } = await import('virtio-ts/testing');
  const q = new MockQueue({ size: 16 });
  const ring = q.deviceQueue();
  const head = q.addChain({ readable: [new TextEncoder().encode('hello')], writable: [8] });
  const chain = ring.pop()!;
  assert.equal(chain.head, head);
  assert.equal(chain.readableBytes, 5);
  ring.pushUsed(chain.head, 3);
  assert.deepEqual(q.readUsed(), [{ id: head, len: 3 }]);
});
