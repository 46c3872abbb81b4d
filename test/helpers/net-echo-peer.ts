/**
 * A separate process playing the far end of a network link, written independently of src/: it speaks
 * QEMU's stream framing (4-byte big-endian length + frame) on TCP or a Unix socket, or one frame per
 * UDP datagram, and echoes every frame back with source and destination MACs swapped.
 *
 *   node net-echo-peer.js stream-listen <path|port>   prints "ready <port-or-path>"
 *   node net-echo-peer.js stream-connect <path|port>  prints "ready connected"
 *   node net-echo-peer.js udp                          prints "ready <port>", echoes to the sender
 *
 * Stream output is written in 3-byte slices so that the reader sees frames split at every boundary.
 */

import { createSocket } from 'node:dgram';
import { createConnection, createServer, type Socket } from 'node:net';

function swapMacs(frame: Buffer): Buffer {
  const out = Buffer.from(frame);
  frame.copy(out, 0, 6, 12);
  frame.copy(out, 6, 0, 6);
  return out;
}

function echoStream(socket: Socket): void {
  let buf = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 4) {
      const len = buf.readUInt32BE(0);
      if (buf.length < 4 + len) break;
      const frame = swapMacs(buf.subarray(4, 4 + len));
      buf = buf.subarray(4 + len);
      const out = Buffer.alloc(4 + len);
      out.writeUInt32BE(len, 0);
      frame.copy(out, 4);
      for (let i = 0; i < out.length; i += 3) socket.write(out.subarray(i, i + 3));
    }
  });
  socket.on('error', () => process.exit(0));
  socket.on('close', () => process.exit(0));
}

const [mode, where] = process.argv.slice(2);
const endpoint = (w: string): { path: string } | { port: number; host: string } =>
  /^\d+$/.test(w) ? { port: Number(w), host: '127.0.0.1' } : { path: w };

if (mode === 'stream-listen') {
  const server = createServer((s) => echoStream(s));
  const ep = endpoint(where!);
  const ready = (): void => {
    const a = server.address();
    console.log(`ready ${typeof a === 'string' ? a : a?.port}`);
  };
  if ('path' in ep) server.listen(ep.path, ready);
  else server.listen(ep.port, ep.host, ready);
} else if (mode === 'stream-connect') {
  const ep = endpoint(where!);
  const s = 'path' in ep ? createConnection(ep.path) : createConnection(ep.port, ep.host);
  s.on('connect', () => {
    echoStream(s);
    console.log('ready connected');
  });
  s.on('error', () => process.exit(1));
} else if (mode === 'udp') {
  const sock = createSocket('udp4');
  sock.on('message', (msg, rinfo) => sock.send(swapMacs(msg), rinfo.port, rinfo.address));
  sock.bind(0, '127.0.0.1', () => console.log(`ready ${sock.address().port}`));
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
