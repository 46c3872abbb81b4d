/**
 * A 64 KiB BIOS image that keeps the x86 CPU idle: every byte is `hlt` and the reset vector runs
 * `cli; hlt; jmp $-3`. No firmware may run under qtest because SeaBIOS would program the devices
 * itself; a CPU paused with -S is no good either, because virtio-rng completes requests only while
 * the machine runs (shared/QTEST.md).
 */

/** x86 opcodes used by the stub. */
const HLT = 0xf4;
const CLI = 0xfa;
const JMP_SHORT = 0xeb;
/** `jmp` back over itself and the `hlt` before it: rel8 = -3. */
const JMP_BACK_TO_HLT = 0xfd;

/** Size of the image QEMU maps at the top of the first MiB and of 4 GiB. */
export const STUB_BIOS_SIZE = 0x10000;
/** Offset of the reset vector (physical 0xffff_fff0) in the image. */
const RESET_VECTOR_OFFSET = 0xfff0;

/** The stub image's bytes. */
export function stubBiosImage(): Uint8Array {
  const image = new Uint8Array(STUB_BIOS_SIZE).fill(HLT);
  image.set([CLI, HLT, JMP_SHORT, JMP_BACK_TO_HLT], RESET_VECTOR_OFFSET);
  return image;
}
