/**
 * Our functions inside v86's saved states (issue 16): v86's save_state collects the CPU's state
 * array (src/cpu.js get_state; every device's get_state nested in it) and restore_state hands the
 * decoded array back to the CPU's set_state. The adapter wraps those two methods: a save adds one
 * element at {@link V86_DEVICE_STATE_INDEX}, far past the last index v86 uses (90 in 0.5.462), holding
 * each virtio function's snapshot (docs/snapshots.md) as bytes; a restore checks that element against
 * the functions plugged now and prepares every function's restore BEFORE v86's own set_state runs, so
 * a state whose device part is corrupt is refused (V86StateError) with the emulator and every function
 * untouched; only then v86 restores its part and the functions take theirs. v86's format is unchanged:
 * a v86 without the adapter reads such a state and ignores the element; a state without it (saved
 * without the adapter) leaves the functions as they are.
 */

import { SnapshotError, V86StateError } from '../../errors.js';
import { decodeSnapshot, encodeSnapshot } from '../../snapshot/codec.js';
import { VirtioPciFunction } from '../../transport/pci/virtio-pci-function.js';
import type { PciFunction } from '../../pci/function.js';

/** Where in the CPU's state array the device part goes. */
export const V86_DEVICE_STATE_INDEX = 128;
/** The device part's first element, and its version (a new layout gets a new version). */
const TAG = 'virtio-ts-devices';
const VERSION = 1;

/** The CPU's state methods (src/cpu.js), as the adapter wraps them. */
export interface V86StatefulCpu {
  get_state(): unknown[];
  set_state(state: unknown[]): void;
}

/** A function on the adapter's bus, as far as states go (pci-adapter.ts's PluggedFunction). */
export interface PluggedFunction {
  readonly devfn: number;
  readonly name: string;
  readonly fn: PciFunction;
}

type Entry = readonly [devfn: number, name: string, snapshot: Uint8Array];

/** The plugged functions that carry state: our virtio functions. */
function virtioFunctions(functions: readonly PluggedFunction[]): (PluggedFunction & { readonly fn: VirtioPciFunction })[] {
  return functions.filter((f): f is PluggedFunction & { readonly fn: VirtioPciFunction } => f.fn instanceof VirtioPciFunction);
}

/** The device part of a state: every virtio function's snapshot, by devfn. */
function devicePart(functions: readonly PluggedFunction[]): unknown[] {
  return [TAG, VERSION, virtioFunctions(functions).map((f): Entry => [f.devfn, f.name, encodeSnapshot(f.fn.snapshot())])];
}

/** The entries of a state's device part, shape-checked (it comes from a file: hostile). */
function readEntries(part: unknown): Entry[] {
  if (!Array.isArray(part) || part.length !== 3 || part[0] !== TAG) throw new V86StateError('the device part of the state is malformed');
  if (part[1] !== VERSION)
    throw new V86StateError(`device part version ${String(part[1]).slice(0, 16)}; this build reads version ${VERSION}`);
  const entries: unknown = part[2];
  if (!Array.isArray(entries)) throw new V86StateError('the device part of the state holds no function list');
  return entries.map((e: unknown, i) => {
    if (!Array.isArray(e) || e.length !== 3 || typeof e[0] !== 'number' || typeof e[1] !== 'string' || !(e[2] instanceof Uint8Array))
      throw new V86StateError(`device part entry ${i} is malformed`);
    return [e[0], e[1].slice(0, 64), e[2]];
  });
}

/**
 * Check `part` (a state's device part) against `functions` and prepare each function's restore,
 * changing nothing; the returned function applies them all. V86StateError on any mismatch.
 */
function prepareDevices(part: unknown, functions: readonly PluggedFunction[]): () => void {
  const entries = readEntries(part);
  const plugged = virtioFunctions(functions);
  const byDevfn = new Map(entries.map((e) => [e[0], e]));
  if (byDevfn.size !== entries.length || entries.length !== plugged.length || plugged.some((f) => !byDevfn.has(f.devfn)))
    throw new V86StateError(
      `the state holds functions at devfn ${entries.map((e) => `0x${e[0].toString(16)}`).join(', ') || 'none'}; ` +
        `plugged now: ${plugged.map((f) => `0x${f.devfn.toString(16)}`).join(', ') || 'none'}`,
    );
  const applies = plugged.map((f) => {
    try {
      return f.fn.prepareRestore(decodeSnapshot(byDevfn.get(f.devfn)![2]));
    } catch (e) {
      if (!(e instanceof SnapshotError)) throw e;
      throw new V86StateError(`function ${f.name} (devfn 0x${f.devfn.toString(16)}): ${e.message}`, e);
    }
  });
  return () => {
    for (const apply of applies) apply();
  };
}

/**
 * Make `cpu`'s saved states carry the functions `functions()` lists; `restored` runs after a state
 * with a device part was restored (the adapter reroutes the BARs and resyncs the interrupt lines).
 */
export function joinV86States(cpu: V86StatefulCpu, functions: () => readonly PluggedFunction[], restored: () => void): void {
  const saveCpu = cpu.get_state.bind(cpu);
  const restoreCpu = cpu.set_state.bind(cpu);
  cpu.get_state = () => {
    const state = saveCpu();
    state[V86_DEVICE_STATE_INDEX] = devicePart(functions());
    return state;
  };
  cpu.set_state = (state) => {
    const part = state[V86_DEVICE_STATE_INDEX];
    const apply = part === undefined || part === null ? undefined : prepareDevices(part, functions());
    restoreCpu(state);
    if (apply === undefined) return;
    apply();
    restored();
  };
}
