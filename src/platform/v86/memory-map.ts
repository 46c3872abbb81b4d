/**
 * The RAM a v86 guest's firmware memory map (e820) states, computed from v86's memory size. v86's
 * memory array spans [0, memory_size), but not all of it is RAM to the guest's OS: the firmware keeps
 * areas for itself, and a device that wrote there would corrupt the BIOS's tables or ROM copies
 * behind the guest's back. The firmware itself does DMA there: SeaBIOS's own virtio-blk driver puts
 * its virtqueues in its top zone and its requests in its low-memory zone (0xc0000-0xfffff) while it
 * boots the guest. Facts this rests on:
 * - v86 (src/cpu.js fill_cmos) tells the BIOS the memory size in CMOS: registers 0x34/0x35 hold the
 *   RAM above 16 MiB in 64 KiB units (at most 0xffff), 0x30/0x31 the RAM above 1 MiB in KiB (at most
 *   0xffff); it reports no RAM above 4 GiB and its fw_cfg has no "etc/e820" file.
 * - SeaBIOS (src/fw/paravirt.c qemu_preinit) takes RAM as [0, 16 MiB + the 0x34/0x35 value), or
 *   [0, 1 MiB + the 0x30/0x31 value) when that is 0; then (src/malloc.c) it removes [0xa0000,
 *   0x100000) from the OS's RAM (VGA window, option ROMs, its own low-memory zone and code), keeps
 *   the 1 KiB EBDA below 0xa0000, and reserves its high table zone at the top of RAM: 16 MiB
 *   (BUILD_MAX_HIGHTABLE since SeaBIOS 1.16.1; Debian 12 ships 1.16.2), aligned down to 16 bytes,
 *   when that leaves the zone above 1 MiB.
 * - The firmware's RAM is all of [0, RAM size) but the VGA window [0xa0000, 0xc0000), which v86
 *   serves as MMIO.
 * test/peer/linux/dma-bounds.test.ts checks the result against the map the booted guest reports. A
 * different BIOS states a different map: give its RAM ranges to the adapter instead.
 */

import type { AddressRange } from '../../memory/guest-memory.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** The most a 16-bit CMOS memory-size pair can hold. */
const CMOS_PAIR_MAX = 0xffff;
/** The legacy VGA window (MMIO in v86): low RAM ends below it. */
const LOW_RAM_END = 0xa_0000;
const VGA_WINDOW_END = 0xc_0000;
/** The extended BIOS data area SeaBIOS keeps just below LOW_RAM_END. */
const EBDA_SIZE = 1 * KiB;
/** Where RAM resumes above the VGA window, option ROMs and BIOS. */
const EXTENDED_RAM_BASE = 1 * MiB;
/** The high table zone SeaBIOS reserves at the top of RAM below 4 GiB (BUILD_MAX_HIGHTABLE). */
const SEABIOS_HIGH_TABLES = 16 * MiB;
/** SeaBIOS's MALLOC_MIN_ALIGN, to which the zone's start is aligned down. */
const SEABIOS_MALLOC_ALIGN = 16;

/** The RAM size SeaBIOS reads from the CMOS registers v86 fills for `memorySize` bytes. */
export function seabiosRamSize(memorySize: number): number {
  if (memorySize >= 16 * MiB) {
    const above16M = Math.min(Math.floor((memorySize - 16 * MiB) / (64 * KiB)), CMOS_PAIR_MAX);
    if (above16M > 0) return 16 * MiB + above16M * 64 * KiB;
  }
  const above1M = memorySize >= 1 * MiB ? Math.min(Math.floor((memorySize - 1 * MiB) / KiB), CMOS_PAIR_MAX) : 0;
  return 1 * MiB + above1M * KiB;
}

/** Which RAM a device may reach in a v86 guest, by who is driving it. */
export interface V86MemoryMap {
  /** The RAM ranges of the map the firmware hands the OS: what devices reach once the guest runs with paging on. */
  readonly ram: readonly AddressRange[];
  /**
   * `ram` with the RAM the firmware keeps for itself: what devices reach while the guest runs
   * without paging (the firmware, and real-mode loaders using its disk services). A virtqueue keeps
   * the bounds of its low and high windows from when it was enabled, so one the firmware set up and
   * the OS goes on using without a reset still reaches the firmware's areas below the OS's RAM end
   * (never past it: that is checked at every access); an OS resets a device before it drives it.
   */
  readonly firmwareRam: readonly AddressRange[];
}

/** The map SeaBIOS gives a v86 guest of `memorySize` bytes. */
export function seabiosMemoryMap(memorySize: number): V86MemoryMap {
  const ramSize = Math.min(seabiosRamSize(memorySize), memorySize);
  const tables = Math.floor((ramSize - SEABIOS_HIGH_TABLES) / SEABIOS_MALLOC_ALIGN) * SEABIOS_MALLOC_ALIGN;
  const top = tables >= EXTENDED_RAM_BASE ? tables : ramSize;
  const low: AddressRange = { base: 0, size: LOW_RAM_END - EBDA_SIZE };
  const firmwareRam: AddressRange[] = [
    { base: 0, size: LOW_RAM_END },
    { base: VGA_WINDOW_END, size: ramSize - VGA_WINDOW_END },
  ];
  if (ramSize <= EXTENDED_RAM_BASE) return { ram: [low], firmwareRam };
  return { ram: [low, { base: EXTENDED_RAM_BASE, size: top - EXTENDED_RAM_BASE }], firmwareRam };
}
