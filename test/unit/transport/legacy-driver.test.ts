import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LegacyDriverTransport } from '../../../src/transport/pci/legacy-driver.js';
import { probe } from '../../../src/transport/pci/probe.js';
import { bdf } from '../../../src/bus/pci-bus.js';
import { DeviceFaultError, UsageError } from '../../../src/errors.js';
import { VIRTIO_PCI_CONFIG_OFF_NO_MSIX } from '../../../src/spec/virtio-pci.js';
import { ConfigSpaceBuilder } from '../../../src/testing/config-space-builder.js';
import { FakePciBus } from '../../../src/testing/fake-pci-bus.js';

const FN = bdf(0, 5, 0);

test('legacy device configuration: the rest of BAR0 after the header; a field past it is the device fault ERR_DEVICE_CONFIG, with no port access', async () => {
  // A legacy blk (0x1001) whose 32-port BAR0 leaves 12 bytes of device configuration after the 20-byte header.
  const bus = new FakePciBus();
  const ports = new Map<number, number>([[VIRTIO_PCI_CONFIG_OFF_NO_MSIX + 8, 0x1234_5678]]);
  bus.add(
    FN,
    new ConfigSpaceBuilder({ deviceId: 0x1001, revision: 0, subsystemId: 2 }).bar(0, { kind: 'io', size: 0x20 }).build(),
    new Map([[0, { read: (offset) => ports.get(offset) ?? 0, write: () => undefined }]]),
  );
  const result = await probe(bus, FN);
  assert.equal(result.kind, 'legacy');
  if (result.kind !== 'legacy') return;
  const t = new LegacyDriverTransport(bus, result.bar0);
  assert.equal(t.deviceConfigSize, 12);
  assert.equal(await t.readConfig(8, 4), 0x1234_5678, 'the last field that fits');
  bus.log.length = 0;
  await assert.rejects(
    t.readConfig(10, 4),
    (e: unknown) =>
      e instanceof DeviceFaultError &&
      e.code === 'ERR_DEVICE_CONFIG' &&
      /\[10, \+4\) lies beyond the 12 bytes of BAR0 after the header/.test(e.message),
  );
  await assert.rejects(t.writeConfig(12, 1, 0), (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_CONFIG');
  await assert.rejects(t.readConfig(0.5, 1), UsageError);
  assert.deepEqual(bus.log, [], 'no port touched');
});
