/**
 * Every error virtio-ts throws is a VirtioError with a stable `code` callers can match on (as undici
 * does). Classes split by failure class: a guest fault the device must answer with
 * DEVICE_NEEDS_RESET (QueueFaultError, GuestMemoryError) is kept apart from a driver facing a bad
 * device (DeviceFaultError), a probe that finds no usable interface (ProbeError), a peer or bus
 * failure (BusError) and a caller's misuse of our API (UsageError).
 */

export class VirtioError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** An access outside guest memory (address, length or their sum out of range, or wrapping). */
export class GuestMemoryError extends VirtioError {
  constructor(
    readonly address: number,
    readonly length: number,
    message = `guest memory access [0x${address.toString(16)}, +0x${length.toString(16)}) is out of range`,
  ) {
    super('ERR_GUEST_MEMORY', message);
  }
}

/**
 * One code per guest fault a device-side virtqueue can detect (cf. spec 2.7.5.3.1 and rust-vmm's
 * virtio-queue Error enum). Any of these stops the queue: the device sets DEVICE_NEEDS_RESET.
 */
export type QueueFaultCode =
  | 'ERR_QUEUE_RING_ADDRESS' // ring not aligned or not inside guest memory
  | 'ERR_QUEUE_AVAIL_INDEX' // avail.idx moved more than queue size past the last seen
  | 'ERR_QUEUE_HEAD_INDEX' // avail ring names a descriptor index >= queue size
  | 'ERR_QUEUE_DESC_INDEX' // a next field points outside the table
  | 'ERR_QUEUE_CHAIN_TOO_LONG' // more descriptors than the table has (a loop)
  | 'ERR_QUEUE_NESTED_INDIRECT' // an indirect descriptor inside an indirect table
  | 'ERR_QUEUE_INDIRECT_LENGTH' // indirect table length zero, not a multiple of 16, or too big
  | 'ERR_QUEUE_INDIRECT_WITH_NEXT' // INDIRECT and NEXT together
  | 'ERR_QUEUE_BUFFER_ADDRESS' // a buffer outside guest memory or wrapping 2^64
  | 'ERR_QUEUE_WRITE_BEFORE_READ' // a device-readable descriptor after a device-writable one
  | 'ERR_QUEUE_USED_OVERFLOW' // more used elements pushed than chains popped
  | 'ERR_QUEUE_HEAD_IN_USE' // avail ring names a head whose chain is still in flight
  | 'ERR_QUEUE_INDIRECT_UNNEGOTIATED' // INDIRECT flag without VIRTIO_F_INDIRECT_DESC
  | 'ERR_QUEUE_DESC_NOT_AVAILABLE' // packed: a chain continues (NEXT) into a descriptor whose AVAIL/USED flags do not mark it available
  | 'ERR_QUEUE_CHAIN_PAST_AVAIL' // packed: a chain runs into ring slots the device still holds (more than the driver can have made available)
  | 'ERR_QUEUE_BUFFER_ID' // packed: a buffer id >= queue size
  | 'ERR_QUEUE_BUFFER_ID_IN_USE' // packed: a buffer id whose buffer is still in flight
  | 'ERR_QUEUE_EVENT_FLAGS' // packed: the reserved value 3 in the driver event suppression flags
  | 'ERR_QUEUE_NOTIFICATION'; // a driver notification of the wrong width, queue identifier or impossible data

export class QueueFaultError extends VirtioError {
  constructor(
    override readonly code: QueueFaultCode,
    readonly queueIndex: number,
    message: string,
  ) {
    super(code, `queue ${queueIndex}: ${message}`);
  }
}

/** A request whose shape the device cannot accept (device-specific parse failure). */
export class RequestShapeError extends VirtioError {
  constructor(message: string) {
    super('ERR_REQUEST_SHAPE', message);
  }
}

/** What a driver may find wrong with a device (a hostile or broken device). */
export type DeviceFaultCode =
  | 'ERR_DEVICE_USED_ID' // used ring names an id not in flight
  | 'ERR_DEVICE_USED_LEN' // used len larger than the writable bytes of the chain
  | 'ERR_DEVICE_USED_INDEX' // used.idx moved more than queue size
  | 'ERR_DEVICE_USED_ORDER' // VIRTIO_F_IN_ORDER: a used entry names a buffer its used.idx step does not reach (out of order)
  | 'ERR_DEVICE_USED_FLAGS' // packed ring: a used descriptor's AVAIL/USED flags disagree with the used wrap counter
  | 'ERR_DEVICE_EVENT_SUPPRESSION' // packed ring: device event suppression with reserved flags, DESC without EVENT_IDX, or an offset outside the ring
  | 'ERR_DEVICE_NEEDS_RESET' // device set DEVICE_NEEDS_RESET
  | 'ERR_DEVICE_FEATURES' // FEATURES_OK not kept, or required features missing
  | 'ERR_DEVICE_QUEUE' // queue absent, size 0, or not accepted
  | 'ERR_DEVICE_CONFIG' // config values out of range or never stable
  | 'ERR_DEVICE_STATUS' // device reported a request failure status
  | 'ERR_DEVICE_TIMEOUT' // no answer within the time allowed
  | 'ERR_DEVICE_PORT_REMOVED'; // the device removed the console port (DEVICE_REMOVE)

export class DeviceFaultError extends VirtioError {
  constructor(
    override readonly code: DeviceFaultCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** Probe found no usable virtio interface, or a capability was malformed. */
export type ProbeErrorCode =
  | 'ERR_PROBE_NOT_VIRTIO' // vendor/device ID not virtio
  | 'ERR_PROBE_NO_INTERFACE' // no common cfg capability and no legacy BAR0
  | 'ERR_PROBE_BAD_CAPABILITY' // capability malformed (BAR index, bounds, length, alignment)
  | 'ERR_PROBE_MISSING_CAPABILITY' // common cfg present but notify/ISR/device missing
  | 'ERR_PROBE_LEGACY_UNAVAILABLE'; // forceLegacy on a device without a legacy interface

export class ProbeError extends VirtioError {
  constructor(
    override readonly code: ProbeErrorCode,
    message: string,
  ) {
    super(code, message);
  }
}

/** A bus or peer failed (QEMU died, socket closed, a command was refused). */
export class BusError extends VirtioError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_BUS', message, options);
  }
}

/** Why an emulator adapter cannot route a BAR the guest programmed. */
export type BarRefusedCode =
  | 'ERR_BAR_ABOVE_4G' // a 64-bit BAR placed above 4 GiB on a machine with 32-bit physical addresses (v86)
  | 'ERR_BAR_BEYOND_PORTS' // an I/O BAR past port 0xffff
  | 'ERR_BAR_CONFLICT'; // the range is RAM or belongs to another device

/**
 * A BAR the guest placed where the emulator cannot route it: the guest's accesses there never reach
 * the function (for ERR_BAR_ABOVE_4G on v86 they are truncated to 32 bits and land elsewhere, e.g.
 * in low RAM). Not thrown at the guest: an adapter reports it to its listeners and its log.
 */
export class BarRefusedError extends VirtioError {
  constructor(
    override readonly code: BarRefusedCode,
    /** The function's name on the adapter. */
    readonly functionName: string,
    readonly barIndex: number,
    readonly kind: 'memory' | 'io',
    /** Bus address (or port) the guest programmed, all 64 bits of it. */
    readonly base: number,
    readonly size: number,
    message: string,
  ) {
    super(code, `${functionName} BAR${barIndex} (${kind} 0x${base.toString(16)}+0x${size.toString(16)}): ${message}`);
  }
}

/** A driver-side virtqueue has too few free descriptors for a chain: reap used ones, then retry. */
export class QueueFullError extends VirtioError {
  constructor(
    readonly queueIndex: number,
    message: string,
  ) {
    super('ERR_QUEUE_FULL', `queue ${queueIndex}: ${message}`);
  }
}

/** Our own API used wrongly (bad access size, value out of range, wrong state). */
export class UsageError extends VirtioError {
  constructor(message: string) {
    super('ERR_USAGE', message);
  }
}

/** Why a host file the caller named cannot be used. */
export type HostFileErrorCode =
  | 'ERR_HOST_FILE_NOT_FOUND' // no such file (or a path component is not a directory)
  | 'ERR_HOST_FILE_IS_DIRECTORY' // a directory where a file was wanted
  | 'ERR_HOST_FILE_NOT_REGULAR' // a device, socket or pipe where a regular file was wanted
  | 'ERR_HOST_FILE_PERMISSION' // not permitted (mode, read-only file system)
  | 'ERR_HOST_FILE_SIZE' // a size the user of the file cannot work with
  | 'ERR_HOST_FILE'; // any other failure of the operating system

/** A host file the caller named (a disk image) cannot be used; the message starts with its path. */
export class HostFileError extends VirtioError {
  constructor(
    override readonly code: HostFileErrorCode,
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, `${path}: ${message}`, options);
  }

  /** The error for a failed system call on `path` (an errno error from node:fs). */
  static fromSystem(path: string, err: unknown): HostFileError {
    // An errno error carries its name in `code` (typed structurally: this module is browser-safe).
    const errno = (err as { code?: unknown } | undefined)?.code;
    switch (errno) {
      case 'ENOENT':
      case 'ENOTDIR':
        return new HostFileError('ERR_HOST_FILE_NOT_FOUND', path, 'no such file', { cause: err });
      case 'EISDIR':
        return new HostFileError('ERR_HOST_FILE_IS_DIRECTORY', path, 'is a directory', { cause: err });
      case 'EACCES':
      case 'EPERM':
        return new HostFileError('ERR_HOST_FILE_PERMISSION', path, 'permission denied', { cause: err });
      case 'EROFS':
        return new HostFileError('ERR_HOST_FILE_PERMISSION', path, 'on a read-only file system', { cause: err });
      default:
        return new HostFileError('ERR_HOST_FILE', path, err instanceof Error ? err.message : String(err), { cause: err });
    }
  }
}

/**
 * A device broke a normative statement of the spec while a conformance check watched
 * (src/conformance/): `statement` is the statement's stable ID, the message says what was read
 * against what the statement requires. The engine reports it as the check's failure.
 */
export class ConformanceViolation extends VirtioError {
  constructor(
    readonly statement: string,
    message: string,
  ) {
    super('ERR_CONFORMANCE_VIOLATION', message);
  }
}

/** Why `virtio-ts serve` cannot serve the browser page. */
export type ServeErrorCode =
  | 'ERR_SERVE_PAGE_MISSING' // the page's build (dist/web) is not there
  | 'ERR_SERVE_PORT_IN_USE'; // the port asked for is taken

/** `virtio-ts serve` cannot start: the message says what to do. */
export class ServeError extends VirtioError {
  constructor(
    override readonly code: ServeErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/**
 * What an administration virtqueue command came back with (2.12.1), driver side:
 * ERR_ADMIN_STATUS when the device answered a status other than VIRTIO_ADMIN_STATUS_OK (`status`
 * and `statusQualifier` as read; a reserved status reads as EINVAL, a reserved qualifier as
 * INVALID_COMMAND, 2.12.1.6), ERR_ADMIN_RESULT when a successful result breaks the spec (e.g. a
 * LIST_QUERY list without LIST_QUERY and LIST_USE).
 */
export type AdminCommandErrorCode = 'ERR_ADMIN_STATUS' | 'ERR_ADMIN_RESULT';

export class AdminCommandError extends VirtioError {
  constructor(
    override readonly code: AdminCommandErrorCode,
    message: string,
    /** The status and status_qualifier read (0 for ERR_ADMIN_RESULT). */
    readonly status = 0,
    readonly statusQualifier = 0,
  ) {
    super(code, message);
  }
}

/**
 * A device-state snapshot refused (src/snapshot/): malformed bytes, or a snapshot that does not fit
 * the function it is restored into. A refused restore leaves the function exactly as it was.
 */
export type SnapshotErrorCode =
  | 'ERR_SNAPSHOT_MALFORMED' // the bytes are not a snapshot: bad magic, truncated, bad tag, limits exceeded, trailing bytes
  | 'ERR_SNAPSHOT_VERSION' // a format version this build does not read
  | 'ERR_SNAPSHOT_KIND' // a snapshot of something else: another kind, device type, PCI mode or function layout
  | 'ERR_SNAPSHOT_FIELD' // a field the reader needs is missing or of the wrong type
  | 'ERR_SNAPSHOT_RANGE' // a value out of range: an index, address, size, status or feature the function cannot hold
  | 'ERR_SNAPSHOT_QUEUE_COUNT' // a different number of queues (or ports, queue pairs) than the function has
  | 'ERR_SNAPSHOT_IN_FLIGHT' // the in-flight chains disagree with the ring indices or with each other
  | 'ERR_SNAPSHOT_TARGET_BUSY' // restore into a function that is not reset (status 0, no reset pending)
  | 'ERR_SNAPSHOT_UNSUPPORTED'; // the function holds state no snapshot can carry (a device model or ring without snapshot support)

export class SnapshotError extends VirtioError {
  constructor(
    override readonly code: SnapshotErrorCode,
    message: string,
  ) {
    super(code, message);
  }
}

/**
 * A v86 saved state whose virtio-ts device part (src/platform/v86/device-state.ts) cannot be restored
 * into the functions plugged now: malformed, another set of functions, or a function's snapshot
 * refused (`cause`, a SnapshotError). Thrown before v86 restores anything: the emulator and every
 * function stay as they were.
 */
export class V86StateError extends VirtioError {
  constructor(message: string, cause?: Error) {
    super('ERR_V86_STATE', message, cause === undefined ? undefined : { cause });
  }
}
