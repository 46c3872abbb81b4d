/**
 * What the user chooses before boot, from the form or the URL query
 * (`?mode=transitional&ring=split&forceLegacy=1&autoboot=1`), checked: the packed ring needs the
 * modern interface (VIRTIO_F_RING_PACKED is a feature bit above 31, which the legacy interface lacks).
 */
import type { VirtioPciMode } from 'virtio-ts';

export type Ring = 'split' | 'packed';

export interface BootOptions {
  readonly mode: VirtioPciMode;
  readonly ring: Ring;
  /** Linux's virtio_pci takes the legacy interface of transitional devices (virtio_pci.force_legacy=1). */
  readonly forceLegacy: boolean;
}

export const MODES: readonly VirtioPciMode[] = ['modern', 'transitional', 'legacy'];
export const RINGS: readonly Ring[] = ['split', 'packed'];

function oneOf<T extends string>(value: string | null, allowed: readonly T[], fallback: T): T {
  return allowed.find((a) => a === value) ?? fallback;
}

/** The options a URL query names (unknown values fall back to the defaults), and whether to boot at once. */
export function queryOptions(search: string): { options: BootOptions; autoboot: boolean } {
  const q = new URLSearchParams(search);
  const flag = (name: string) => q.get(name) === '1' || q.get(name) === 'true';
  return {
    options: { mode: oneOf(q.get('mode'), MODES, 'modern'), ring: oneOf(q.get('ring'), RINGS, 'split'), forceLegacy: flag('forceLegacy') },
    autoboot: flag('autoboot'),
  };
}

/** Why these options cannot boot, or undefined when they can. */
export function optionsProblem(o: BootOptions): string | undefined {
  if (o.ring !== 'packed') return undefined;
  if (o.mode === 'legacy') return 'the packed ring needs the modern interface: legacy devices have none';
  if (o.forceLegacy) return 'the packed ring needs the modern interface, and force_legacy makes Linux use the legacy one';
  return undefined;
}
