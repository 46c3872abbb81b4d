/**
 * The packed driver's VIRTIO_F_NOTIFICATION_DATA value (2.9): next_off and next_wrap say where the
 * next available descriptor will be, i.e. where a device that took every published chain stands.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { packedRig } from '../../../helpers/packed-ring.js';

test('packed notificationData: the device position after the published chains (offset, wrap in bit 15), over laps; added chains count once published', async () => {
  for (const size of [1, 3, 8]) {
    for (const remote of [false, true]) {
      const { driver, device, buffer } = packedRig({ size, remote });
      const out = buffer(4, 1);
      const inn = buffer(4);
      const devicePosition = (): number => device.availNext | (device.availWrap << 15);
      assert.equal(driver.notificationData(), 1 << 15, 'a fresh ring: slot 0, driver wrap counter 1');
      for (let round = 0; round < 5 * size; round++) {
        const slots = size > 1 && round % 2 === 0 ? 2 : 1;
        const before = driver.notificationData();
        driver.add(slots === 2 ? [out] : [], [inn], round);
        assert.equal(driver.notificationData(), before, `size ${size} round ${round}: an added chain counts once published`);
        if (driver.coherent) driver.publishSync();
        else await driver.publish();
        const chain = device.pop();
        assert.equal(chain?.descs.length, slots);
        assert.equal(driver.notificationData(), devicePosition(), `size ${size} round ${round}`);
        device.use(chain.id, 0, slots);
        await driver.reap();
      }
    }
  }
});
