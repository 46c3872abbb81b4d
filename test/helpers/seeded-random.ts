/** A seeded generator for tests that draw sizes and completion orders: the same seed, the same run. */
export class SeededRandom {
  constructor(private state: number) {}

  /** An integer in [0, n). */
  below(n: number): number {
    this.state = (Math.imul(this.state, 1103515245) + 12345) >>> 0;
    return (this.state >>> 8) % n;
  }

  /** 0..n-1 in a random order (Fisher-Yates). */
  permutation(n: number): number[] {
    const out = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.below(i + 1);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }
}
