/**
 * Which guest folder a kernel name selects (src/platform/v86/assets.ts): one folder per kernel under
 * the guest cache, $VIRTIO_TS_GUEST_KERNEL picking the default, an unknown name refused with a typed
 * error naming the known ones.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { UsageError } from '../../../src/errors.js';
import { defaultGuestKernel, guestAssetDir } from '../../../src/platform/v86/assets.js';

test('each kernel has its own folder under the guest cache; $VIRTIO_TS_GUEST_KERNEL picks the default, 6.1 without it', (t) => {
  const saved = { cache: process.env['VIRTIO_TS_GUEST_CACHE'], kernel: process.env['VIRTIO_TS_GUEST_KERNEL'] };
  t.after(() => {
    for (const [name, value] of [
      ['VIRTIO_TS_GUEST_CACHE', saved.cache],
      ['VIRTIO_TS_GUEST_KERNEL', saved.kernel],
    ] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });
  process.env['VIRTIO_TS_GUEST_CACHE'] = '/guests';
  delete process.env['VIRTIO_TS_GUEST_KERNEL'];
  assert.equal(defaultGuestKernel(), '6.1');
  assert.equal(guestAssetDir(), '/guests');
  assert.equal(guestAssetDir('6.1-pae'), join('/guests', '686-pae'));
  assert.equal(guestAssetDir('6.5'), join('/guests', '6.5-686'));
  process.env['VIRTIO_TS_GUEST_KERNEL'] = '6.5';
  assert.equal(guestAssetDir(), join('/guests', '6.5-686'));
  process.env['VIRTIO_TS_GUEST_KERNEL'] = '5.10';
  assert.throws(
    () => guestAssetDir(),
    (err: unknown) => err instanceof UsageError && err.code === 'ERR_USAGE' && /5\.10: use one of 6\.1, 6\.1-pae, 6\.5/.test(err.message),
  );
});
