/**
 * The driver's side of the device status field (2.1): the bits it has set, the initialisation step
 * it is at (3.1.1; which calls are allowed now), FEATURES_OK read back, DRIVER_OK, DEVICE_NEEDS_RESET
 * read back as the driver's fault, FAILED when it gives up, and the waits of suspend and resume
 * (3.4). The device's side is core/device-status.ts; the driver core (virtio-driver.ts) owns one.
 */

import { DeviceFaultError, UsageError } from '../errors.js';
import { hasFeature, VIRTIO_F_SUSPEND } from '../spec/features.js';
import {
  decodeStatus,
  VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FAILED,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_CONFIG_S_SUSPEND,
} from '../spec/status.js';
import { pollUntil, type DriverTransport } from '../transport/pci/driver-transport.js';
import { formatBdf, type Bdf } from '../bus/pci-bus.js';

/** The driver's step: negotiating features, setting up queues, live, suspended (3.4), or closed. */
export type DriverPhase = 'features' | 'queues' | 'live' | 'suspended' | 'closed';

/** See the file comment. */
export class DriverStatus {
  phase: DriverPhase = 'features';
  /** The fault that stopped the driver, if any. */
  fault: Error | undefined;

  constructor(
    private readonly transport: DriverTransport,
    private readonly fn: Bdf,
    /** The bits the driver has set so far. */
    private bits: number,
    /** Called when the device is found to need a reset: every waiter should wake to the fault. */
    private readonly onNeedsReset: () => void,
  ) {}

  /** UsageError naming `what` unless the driver is at `phase`. */
  expect(phase: DriverPhase, what: string): void {
    if (this.phase !== phase) throw new UsageError(`${what} is not allowed now (driver is at the '${this.phase}' step)`);
  }

  async setBit(bit: number): Promise<void> {
    this.bits |= bit;
    await this.transport.setStatus(this.bits);
  }

  /** Set FAILED (spec 3.1.1 step 8: the driver gives up) and throw `error`. */
  async fail(error: Error): Promise<never> {
    this.fault = error;
    await this.setBit(VIRTIO_CONFIG_S_FAILED).catch(() => undefined);
    throw error;
  }

  /**
   * Set FEATURES_OK and read it back (spec 3.1.1 steps 5-6, modern interface): a device that does not
   * keep it for `features` fails the driver (DeviceFaultError ERR_DEVICE_FEATURES, after FAILED).
   */
  async featuresOk(features: bigint): Promise<void> {
    await this.setBit(VIRTIO_CONFIG_S_FEATURES_OK);
    const readBack = await this.transport.getStatus();
    if ((readBack & VIRTIO_CONFIG_S_FEATURES_OK) === 0)
      await this.fail(
        new DeviceFaultError(
          'ERR_DEVICE_FEATURES',
          `device did not keep FEATURES_OK for features 0x${features.toString(16)} (status ${decodeStatus(readBack)})`,
        ),
      );
  }

  /** Set DRIVER_OK (spec 3.1.1 step 8): the device is live. Throws if it answers with DEVICE_NEEDS_RESET. */
  async driverOk(): Promise<void> {
    this.expect('queues', 'driverOk()');
    await this.setBit(VIRTIO_CONFIG_S_DRIVER_OK);
    this.phase = 'live';
    await this.check();
  }

  /** VIRTIO_F_SUSPEND (3.4): see VirtioDriver.suspend. */
  async suspend(negotiated: bigint, timeoutMs: number): Promise<void> {
    this.expect('live', 'suspend()');
    if (!hasFeature(negotiated, VIRTIO_F_SUSPEND)) throw new UsageError(`${formatBdf(this.fn)}: VIRTIO_F_SUSPEND was not negotiated`);
    this.phase = 'suspended';
    await this.setBit(VIRTIO_CONFIG_S_SUSPEND);
    await this.waitFor(VIRTIO_CONFIG_S_SUSPEND, VIRTIO_CONFIG_S_DRIVER_OK, 'suspended', timeoutMs);
  }

  /** 3.4: see VirtioDriver.resume. */
  async resume(timeoutMs: number): Promise<void> {
    this.expect('suspended', 'resume()');
    this.bits = (this.bits & ~VIRTIO_CONFIG_S_SUSPEND) | VIRTIO_CONFIG_S_DRIVER_OK;
    await this.transport.setStatus(this.bits);
    await this.waitFor(VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_SUSPEND, 'running again', timeoutMs);
    this.phase = 'live';
  }

  /** Read the device status and turn DEVICE_NEEDS_RESET into the driver's fault. */
  async check(): Promise<number> {
    const status = await this.transport.getStatus();
    if ((status & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET) !== 0 && this.fault === undefined) {
      this.fault = new DeviceFaultError(
        'ERR_DEVICE_NEEDS_RESET',
        `${formatBdf(this.fn)}: device set DEVICE_NEEDS_RESET (status ${decodeStatus(status)})`,
      );
      this.onNeedsReset();
      throw this.fault;
    }
    if (this.fault !== undefined) throw this.fault;
    return status;
  }

  /** Poll device status until `set` is all set and `clear` all clear (DEVICE_NEEDS_RESET ends the wait as the driver's fault). */
  private async waitFor(set: number, clear: number, what: string, timeoutMs: number): Promise<void> {
    await pollUntil(
      () => this.check(),
      (status) => (status & (set | clear)) === set,
      timeoutMs,
      `${formatBdf(this.fn)}: device not ${what} within ${timeoutMs} ms`,
    );
  }
}
