/**
 * Which of v86's MMIO byte reads are the halves of a guest's 16-bit read. v86 has no 16-bit MMIO
 * read hook: src/rust/cpu/memory.rs read16 calls the block's byte handler twice, low byte first, so
 * a 16-bit read and two 8-bit reads of the same bytes look alike to the handler. The CPU still
 * knows which it is doing, and says so here:
 * - compiled (JIT) code reaches MMIO through the slow paths it imports from `cpu.jit_imports` by
 *   name, at instantiation; its 16-bit reads through safe_read16_slow_jit and
 *   safe_read_write16_slow_jit, which this wraps (exact);
 * - the interpreter keeps the running instruction's prefixes in memory: in 32-bit code, a byte read
 *   under the operand-size prefix (0x66, as `movw` has) is half of a 16-bit read.
 * Any other byte read is taken as one (16-bit code, where the operand size does not tell a byte
 * instruction from a word one; `movzwl`; the few instructions compiled code leaves to the
 * interpreter's helpers): it reaches the function at byte width, which is never wider than the guest
 * asked and never served from an earlier read.
 */

import type { V86Cpu } from './internals.js';

/** The operand-size prefix's bit in v86's prefix mask (src/rust/prefix.rs PREFIX_MASK_OPSIZE). */
const PREFIX_MASK_OPSIZE = 0x20;

/** The JIT's 16-bit read slow paths (src/rust/cpu/cpu.rs). */
const JIT_WORD_READS = ['safe_read16_slow_jit', 'safe_read_write16_slow_jit'] as const;

export class MmioWordReads {
  /** Depth of the JIT's 16-bit slow reads under way. */
  private jitWordReads = 0;

  /** Call before the emulator first runs: compiled code instantiated earlier keeps the unwrapped imports. */
  constructor(private readonly cpu: V86Cpu) {
    for (const name of JIT_WORD_READS) {
      const read = cpu.jit_imports[name];
      cpu.jit_imports[name] = (addr: number, eip: number) => {
        this.jitWordReads++;
        try {
          return read(addr, eip);
        } finally {
          this.jitWordReads--;
        }
      };
    }
  }

  /** The byte read being served is part of a 16-bit read by the guest. */
  inWordRead(): boolean {
    const cpu = this.cpu;
    return this.jitWordReads > 0 || (cpu.is_32[0] !== 0 && (cpu.prefixes[0]! & PREFIX_MASK_OPSIZE) !== 0);
  }
}
