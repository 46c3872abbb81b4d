/**
 * Every fuzz target by name. Loaded lazily: the engine starts V8 coverage first, then imports the
 * target, so its code (and the code under test) compiles with block counters.
 */

import type { FuzzTargetModule } from '../engine/target.js';

export const TARGETS: Readonly<Record<string, () => Promise<FuzzTargetModule>>> = {
  'guest-memory': () => import('./guest-memory.js'),
  'split-ring': () => import('./split-ring.js'),
  'packed-ring': () => import('./packed-ring.js'),
  'pci-transport': () => import('./pci-transport.js'),
  'device-requests': () => import('./device-requests.js'),
  'hostile-device': () => import('./hostile-device.js'),
  'hostile-device-packed': () => import('./hostile-device-packed.js'),
  snapshot: () => import('./snapshot.js'),
};
