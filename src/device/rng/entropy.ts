/** Where virtio-rng gets its bytes: a function that fills a buffer with random bytes. */
export type EntropySource = (dst: Uint8Array) => void;

/** Web Crypto's getRandomValues refuses more than this many bytes per call. */
const GET_RANDOM_VALUES_MAX = 65536;

/** Entropy from Web Crypto (globalThis.crypto.getRandomValues), in chunks it accepts. */
export const webCryptoEntropy: EntropySource = (dst) => {
  for (let at = 0; at < dst.byteLength; at += GET_RANDOM_VALUES_MAX) {
    globalThis.crypto.getRandomValues(dst.subarray(at, Math.min(at + GET_RANDOM_VALUES_MAX, dst.byteLength)));
  }
};
