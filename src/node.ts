/**
 * virtio-ts/node: the backends that need Node: a block device in a file, console ports on Node
 * streams (stdio, a socket, a file), virtio-net on a stream socket or UDP. Everything else is in
 * the main entry, `virtio-ts`.
 *
 * @packageDocumentation
 */

export { FileBlockBackend, type FileBackendOptions } from './device/blk/file-backend.js';
export {
  filePortStreams,
  socketPortStreams,
  stdioPortStreams,
  streamBytePort,
  type ConsolePortStreams,
} from './device/console/port-streams.js';
export {
  StreamNetBackend,
  type StreamAddress,
  type StreamNetBackendOptions,
  type StreamNetBackendStats,
} from './device/net/stream-backend.js';
export { DgramNetBackend, type DgramEndpoint, type DgramNetBackendOptions, type DgramNetBackendStats } from './device/net/dgram-backend.js';
