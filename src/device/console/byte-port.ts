/**
 * The host end of a console port as plain bytes, so that the device model needs no Node streams:
 * the host implements `ConsoleBytePort` (where guest output goes, and when more host input is
 * welcome) and drives the port through the `ConsolePortLink` it is handed (host input, drain, and
 * the end going away). Node stream adapters are in `virtio-ts/node`.
 *
 * Flow control both ways, without loss: the device takes no guest output while `write` has said the
 * host end is full, until the host calls `drained()`; after each `deliver` the host waits for
 * `resume()` (called once the guest has taken every byte delivered) before delivering more.
 */

/** The host end of one console port, implemented by the host. Every member is optional. */
export interface ConsoleBytePort {
  /**
   * Guest -> host bytes, in batches: the transmit chains of one notification gathered into one
   * write of at most `room()` bytes (at least one chain). The array is the host's to keep.
   * Returns whether more may be written now; after `false` the device waits for
   * `ConsolePortLink.drained()`. Without `write`, guest output is discarded (and counted).
   */
  write?(bytes: Uint8Array): boolean;
  /** Bytes `write` takes before it returns false (default: no limit). */
  room?(): number;
  /** The guest has taken every byte delivered so far: the host may deliver more. */
  resume?(): void;
  /** Called once, when the device is built, with the link through which the host drives the port. */
  open?(link: ConsolePortLink): void;
}

/** What the device offers a port's host end (a `ConsolePort` is one). */
export interface ConsolePortLink {
  /**
   * Host -> guest bytes (the device keeps the array until the guest has taken them). The host then
   * waits for `ConsoleBytePort.resume()` before delivering more; bytes delivered meanwhile are kept
   * too, so a host that does not wait grows the device's buffer.
   */
  deliver(bytes: Uint8Array): void;
  /** `write` may be called again after it returned false: guest output flows again. */
  drained(): void;
  /** The host end went away (PORT_OPEN 0 to a multiport driver); guest output is discarded from now on. */
  disconnected(): void;
}
