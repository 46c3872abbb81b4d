/**
 * Byte-level access to a descriptor chain as one device-readable stream followed by one
 * device-writable stream, whatever the buffer boundaries (2.7.4.2: a device must not assume a
 * particular layout). Loops run over the chain's buffers, so they are bounded by the queue size.
 * Lengths are read once, as `length`: V8 does not inline the byteLength getter of a view.
 */

import { RequestShapeError } from '../errors.js';
import type { DescriptorChain } from '../queue/types.js';

/**
 * Copy `dst.length` device-readable bytes starting at readable offset `start` into `dst`.
 * Throws RequestShapeError when the chain has fewer readable bytes.
 */
export function readChain(chain: DescriptorChain, start: number, dst: Uint8Array): void {
  const total = dst.length;
  if (start < 0 || start + total > chain.readableBytes) {
    throw new RequestShapeError(`chain ${chain.head}: ${total} readable bytes at ${start} exceed ${chain.readableBytes}`);
  }
  let skip = start;
  let done = 0;
  for (let i = 0; i < chain.readable && done < total; i++) {
    const len = chain.len(i);
    if (skip >= len) {
      skip -= len;
      continue;
    }
    const n = Math.min(len - skip, total - done);
    // A whole buffer needs no second view of it (views are the cost of a small copy).
    const view = chain.view(i);
    dst.set(skip === 0 && n === len ? view : view.subarray(skip, skip + n), done);
    done += n;
    skip = 0;
  }
}

/**
 * All device-readable bytes of the chain as one fresh copy.
 * Throws RequestShapeError beyond `maxBytes`, so that a guest cannot make the device allocate
 * without bound.
 */
export function gatherReadable(chain: DescriptorChain, maxBytes: number): Uint8Array {
  if (chain.readableBytes > maxBytes) {
    throw new RequestShapeError(`chain ${chain.head}: ${chain.readableBytes} readable bytes exceed the limit of ${maxBytes}`);
  }
  const out = new Uint8Array(chain.readableBytes);
  readChain(chain, 0, out);
  return out;
}

/**
 * Copy `src` into the device-writable bytes starting at writable offset `start`.
 * Throws RequestShapeError when the chain has fewer writable bytes.
 */
export function writeChain(chain: DescriptorChain, start: number, src: Uint8Array): void {
  const total = src.length;
  if (start < 0 || start + total > chain.writableBytes) {
    throw new RequestShapeError(`chain ${chain.head}: ${total} writable bytes at ${start} exceed ${chain.writableBytes}`);
  }
  let skip = start;
  let done = 0;
  for (let i = chain.readable; i < chain.count && done < total; i++) {
    const len = chain.len(i);
    if (skip >= len) {
      skip -= len;
      continue;
    }
    const n = Math.min(len - skip, total - done);
    chain.view(i).set(done === 0 && n === total ? src : src.subarray(done, done + n), skip);
    done += n;
    skip = 0;
  }
}
