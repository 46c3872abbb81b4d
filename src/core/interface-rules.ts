/**
 * The rules one interface (the modern one, the legacy one) sets for the device core: its
 * status table, the features FEATURES_OK requires, and what it offers and allows beyond the modern
 * interface. A transitional device's front-ends switch the core's rules when the driver commits to one.
 */

import type { StatusStep } from './device-status.js';

/** The rules of one interface to the core: its status table and the features FEATURES_OK requires. */
export interface InterfaceRules {
  /** The status transition table (default {@link MODERN_STATUS_STEPS}). */
  readonly statusSteps?: readonly StatusStep[];
  /** Features the driver must accept for FEATURES_OK (default VERSION_1, as on the modern interface). */
  readonly requiredFeatures?: bigint;
  /**
   * Features offered through this interface only, on top of the device's and the transport's (the
   * legacy interface's VIRTIO_F_ANY_LAYOUT, 6.3; default none).
   */
  readonly interfaceFeatures?: bigint;
  /**
   * Whether the driver may use the device before DRIVER_OK (the legacy interface, 3.1.2: legacy
   * drivers often did): a notification once the queue set-up bits are set starts the device then,
   * with the features written so far, as if DRIVER_OK had come (default false: 2.1.2, the device
   * consumes no buffer before DRIVER_OK).
   */
  readonly usableBeforeDriverOk?: boolean;
}
