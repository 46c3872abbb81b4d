/**
 * A separate process at the host end of a console port's Unix socket.
 *
 *   node console-peer.js slow-read <path> <bytes>   reads slowly (a pause after every chunk) until
 *                                                    <bytes> arrived, prints "done <count> <sha256>"
 *   node console-peer.js fast-write <path> <bytes>  writes <bytes> of patterned data at once, prints
 *                                                    "sent <sha256>" and ends the connection
 */

import { createHash } from 'node:crypto';
import { createConnection } from 'node:net';

/** The bytes both ends agree on: a simple pattern that no offset repeats quickly. */
export function patterned(length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = (i * 131 + (i >> 11)) & 0xff;
  return out;
}

const [mode, path, count] = process.argv.slice(2);
if (mode === 'slow-read' || mode === 'fast-write') {
  const total = Number(count);
  const socket = createConnection(path!);
  socket.on('error', (err) => {
    console.error(err);
    process.exit(1);
  });
  if (mode === 'slow-read') {
    const hash = createHash('sha256');
    let got = 0;
    socket.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      got += chunk.length;
      if (got >= total) {
        console.log(`done ${got} ${hash.digest('hex')}`);
        socket.end();
        return;
      }
      socket.pause();
      setTimeout(() => socket.resume(), 2);
    });
  } else {
    socket.on('connect', () => {
      const data = patterned(total);
      socket.end(data, () => console.log(`sent ${createHash('sha256').update(data).digest('hex')}`));
    });
  }
}
