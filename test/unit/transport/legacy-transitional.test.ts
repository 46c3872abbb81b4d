import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArrayGuestMemory } from '../../../src/memory/guest-memory.js';
import { PCI_COMMAND, PCI_COMMAND_IO, PCI_COMMAND_MEMORY } from '../../../src/spec/pci.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
} from '../../../src/spec/status.js';
import {
  VIRTIO_PCI_COMMON_GF,
  VIRTIO_PCI_COMMON_GFSELECT,
  VIRTIO_PCI_COMMON_STATUS,
  VIRTIO_PCI_STATUS,
} from '../../../src/spec/virtio-pci.js';
import { VirtioPciFunction } from '../../../src/transport/pci/virtio-pci-function.js';
import { LoopbackDevice } from '../../helpers/loopback-device.js';

const ACK_DRIVER = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;
const BAR4_ISR = 0x1000;

function transitional() {
  const fn = new VirtioPciFunction(
    new LoopbackDevice({ deviceType: 4, queueMaxSizes: [16] }),
    {
      memory: new ArrayGuestMemory(1 << 20),
      sendMsi: () => {},
      setIntx: () => {},
    },
    { mode: 'transitional' },
  );
  fn.configWrite(PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
  const messages: string[] = [];
  fn.arbiter!.onIgnoredAccess((m) => messages.push(m));
  const legacy = {
    r: (o: number, s: 1 | 2 | 4) => fn.barRead(0, o, s),
    w: (o: number, s: 1 | 2 | 4, v: number) => fn.barWrite(0, o, s, v),
  };
  const modern = {
    r: (o: number, s: 1 | 2 | 4) => fn.barRead(4, o, s),
    w: (o: number, s: 1 | 2 | 4, v: number) => fn.barWrite(4, o, s, v),
  };
  return { fn, legacy, modern, messages };
}

test('transitional: the first write after reset commits; writes through the other interface are ignored and counted', () => {
  const { fn, legacy, modern, messages } = transitional();
  const arbiter = fn.arbiter!;
  assert.equal(arbiter.committed, undefined);
  // Reads commit nothing and are served through both.
  assert.equal(legacy.r(VIRTIO_PCI_STATUS, 1), 0);
  assert.equal(modern.r(VIRTIO_PCI_COMMON_STATUS, 1), 0);
  assert.equal(arbiter.committed, undefined);

  legacy.w(VIRTIO_PCI_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE);
  assert.equal(arbiter.committed, 'legacy');
  modern.w(VIRTIO_PCI_COMMON_STATUS, 1, ACK_DRIVER);
  modern.w(VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
  modern.w(VIRTIO_PCI_COMMON_GF, 4, 1);
  assert.equal(fn.core.status, VIRTIO_CONFIG_S_ACKNOWLEDGE, 'modern status write ignored');
  assert.equal(fn.core.driverFeatures, 0n, 'modern feature write ignored');
  // An ISR read through the other interface would clear state: ignored too, reads 0.
  assert.equal(modern.r(BAR4_ISR, 1), 0);
  assert.equal(arbiter.ignoredAccesses, 4);
  assert.equal(messages.length, 4);
  assert.match(messages[0]!, /^modern write8 of 0x3 at BAR4\+0x14 ignored: the driver committed to the legacy interface/);
  assert.match(arbiter.lastIgnored!, /modern read8 at BAR4\+0x1000 ignored/);
  // Legacy rules while committed to legacy: DRIVER_OK without FEATURES_OK.
  legacy.w(VIRTIO_PCI_STATUS, 1, ACK_DRIVER);
  legacy.w(VIRTIO_PCI_STATUS, 1, ACK_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK);
  assert.equal(fn.core.status, ACK_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK);

  // A reset through the other interface is always served and ends the commitment.
  modern.w(VIRTIO_PCI_COMMON_STATUS, 1, 0);
  assert.equal(fn.core.status, 0);
  assert.equal(arbiter.committed, undefined);
  assert.equal(arbiter.ignoredAccesses, 4, 'the reset was not an ignored access');

  // Now modern commits, with modern rules: DRIVER_OK needs FEATURES_OK, which needs VERSION_1.
  modern.w(VIRTIO_PCI_COMMON_STATUS, 1, ACK_DRIVER);
  assert.equal(arbiter.committed, 'modern');
  modern.w(VIRTIO_PCI_COMMON_STATUS, 1, ACK_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK);
  assert.equal(fn.core.status, ACK_DRIVER, 'no DRIVER_OK before FEATURES_OK on the modern interface');
  modern.w(VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
  modern.w(VIRTIO_PCI_COMMON_GF, 4, 1); // VERSION_1
  modern.w(VIRTIO_PCI_COMMON_STATUS, 1, ACK_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
  assert.equal(fn.core.status, ACK_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
  legacy.w(VIRTIO_PCI_STATUS, 1, ACK_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
  assert.equal(fn.core.status, ACK_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK, 'legacy write ignored');
  assert.equal(arbiter.ignoredAccesses, 5);
  assert.match(arbiter.lastIgnored!, /^legacy write8 of 0xf at BAR0\+0x12 ignored: the driver committed to the modern interface/);
  // Reset through legacy.
  legacy.w(VIRTIO_PCI_STATUS, 1, 0);
  assert.equal(fn.core.status, 0);
  assert.equal(arbiter.committed, undefined);
});

test('transitional: a 2-byte write of 0 at device status is a reset through either interface, as through the committed one', () => {
  const { fn, legacy, modern } = transitional();
  const arbiter = fn.arbiter!;
  legacy.w(VIRTIO_PCI_STATUS, 1, ACK_DRIVER);
  // 2 bytes at status: device_status and config_generation (modern), device status and ISR (legacy);
  // the neighbours are read-only, so the access is a status write of 0, as QEMU decodes it.
  modern.w(VIRTIO_PCI_COMMON_STATUS, 2, 0);
  assert.equal(fn.core.status, 0);
  assert.equal(arbiter.committed, undefined);
  modern.w(VIRTIO_PCI_COMMON_STATUS, 1, ACK_DRIVER);
  assert.equal(arbiter.committed, 'modern');
  legacy.w(VIRTIO_PCI_STATUS, 2, 0);
  assert.equal(fn.core.status, 0);
  assert.equal(arbiter.committed, undefined);
  assert.equal(arbiter.ignoredAccesses, 0);
  modern.w(VIRTIO_PCI_COMMON_STATUS, 1, ACK_DRIVER);
  modern.w(VIRTIO_PCI_COMMON_STATUS, 2, 0);
  assert.equal(fn.core.status, 0);
});

test('transitional: the PCI_CFG window reaches BAR4 through the same arbiter', () => {
  const { fn, legacy } = transitional();
  legacy.w(VIRTIO_PCI_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE);
  const cap = fn.modern.capabilities.pciCfg.offset;
  fn.configWrite(cap + 4, 1, 4); // bar
  fn.configWrite(cap + 8, 4, VIRTIO_PCI_COMMON_STATUS); // offset
  fn.configWrite(cap + 12, 4, 1); // length
  fn.configWrite(cap + 16, 1, ACK_DRIVER);
  assert.equal(fn.core.status, VIRTIO_CONFIG_S_ACKNOWLEDGE);
  assert.equal(fn.arbiter!.ignoredAccesses, 1);
});
