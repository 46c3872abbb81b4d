/**
 * How the page wires virtio-ts devices into v86: the README's "In the browser" snippet is the part
 * between the markers, word for word (test/unit/docs/readme-browser.test.ts compares them).
 */
// readme-browser: start
import type { V86 } from 'v86';
import { BlkDevice, RngDevice, VirtioConsoleDevice, VirtioNetDevice, type VirtioDevice } from 'virtio-ts';
import type { BlockBackend, ConsoleBytePort, NetBackend, VirtioPciMode } from 'virtio-ts';
import { FIRST_FREE_DEVFN, V86PciAdapter } from 'virtio-ts/v86';

export interface PageDevices {
  readonly disk: BlockBackend; // e.g. new MemoryBlockBackend(32 << 20)
  readonly terminal: ConsoleBytePort; // port 0 of virtio-console: the guest's hvc0
  readonly network: NetBackend; // e.g. new PingResponder({ ip: '10.0.86.1' })
  readonly size: { readonly cols: number; readonly rows: number };
  readonly mode: VirtioPciMode; // 'modern' | 'transitional' | 'legacy'
  readonly packed: boolean; // offer VIRTIO_F_RING_PACKED
}

/** Call on v86's "emulator-loaded" event, before emulator.run(). */
export function plugDevices(emulator: V86, d: PageDevices): V86PciAdapter {
  const adapter = new V86PciAdapter(emulator); // serves config cycles, routes BARs, drives INTx
  const devices: [string, VirtioDevice][] = [
    ['blk', new BlkDevice({ backend: d.disk })],
    ['console', new VirtioConsoleDevice({ ports: [{ console: true, host: d.terminal }], size: d.size })],
    ['rng', new RngDevice()], // Web Crypto by default
    ['net', new VirtioNetDevice({ backend: d.network })],
  ];
  for (const [i, [name, device]] of devices.entries())
    adapter.plugVirtio(FIRST_FREE_DEVFN + (i << 3), name, device, { mode: d.mode, packed: d.packed });
  return adapter;
}
// readme-browser: end
