/**
 * The packed driver's notification data (2.9, VIRTIO_F_NOTIFICATION_DATA): bits 16-31 of the value
 * are next_off and next_wrap, the slot and wrap counter where the driver will put its next available
 * descriptor, as of the last publish. Checked against where a device that consumed everything
 * published stands, over several laps of a ring whose size is not a power of 2.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { packedRig } from '../../../helpers/packed-ring.js';

test('packed notificationData is next_off | next_wrap << 15 of the published descriptors, across wraps', async () => {
  const rig = packedRig({ size: 5 });
  const { driver, device } = rig;
  assert.equal(driver.notificationData(), 1 << 15, 'before any publish: slot 0, wrap counter 1');
  let token = 0;
  for (let round = 0; round < 12; round++) {
    const chains = 1 + (round % 2); // 1 or 2 chains of 2 descriptors each (out + in)
    for (let c = 0; c < chains; c++) driver.add([rig.buffer(8, 1)], [rig.buffer(8)], token++);
    // Added but not yet published: the notification data still names the old end.
    const before = driver.notificationData();
    driver.add([rig.buffer(4, 2)], [], token++);
    assert.equal(driver.notificationData(), before);
    driver.publishSync();
    for (let chain = device.pop(); chain !== null; chain = device.pop()) device.use(chain.id, 0, chain.descs.length);
    assert.equal(driver.notificationData(), device.availNext | (device.availWrap << 15), `round ${round}`);
    assert.equal(driver.reapSync().length, chains + 1);
  }
});
