/**
 * virtio-console port 0 on an xterm.js terminal: guest output is written to the terminal, keys typed
 * go to the guest. Flow control both ways (see ConsoleBytePort): the device stops taking guest output
 * while the terminal has more than OUTPUT_HIGH_WATER bytes still to render, and keys typed while the
 * guest has not taken the last delivery wait here, joined into one delivery.
 */
import type { IDisposable, Terminal } from '@xterm/xterm';
import type { ConsoleBytePort, ConsolePortLink } from 'virtio-ts';

/** Bytes handed to the terminal and not yet rendered, past which the guest waits. */
const OUTPUT_HIGH_WATER = 256 << 10;
/** Typed bytes kept while the guest is busy (a paste beyond this is cut). */
const INPUT_LIMIT = 64 << 10;

export class TerminalPort implements ConsoleBytePort {
  private link: ConsolePortLink | undefined;
  private rendering = 0;
  private full = false;
  private delivering = false;
  private typed: Uint8Array[] = [];
  private typedBytes = 0;
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder();
  /** The last characters of guest output, where the prompt is looked for. */
  private tail = '';
  private readonly keys: IDisposable;

  /** @param onOutput called with the recent output (bounded) after each write, e.g. to spot the shell's prompt */
  constructor(
    private readonly terminal: Terminal,
    private readonly onOutput: (recent: string) => void,
  ) {
    this.keys = terminal.onData((text) => this.type(text));
  }

  /** Stop taking keys (the guest is gone). */
  dispose(): void {
    this.keys.dispose();
    this.link = undefined;
  }

  open(link: ConsolePortLink): void {
    this.link = link;
  }

  write(bytes: Uint8Array): boolean {
    this.rendering += bytes.byteLength;
    this.terminal.write(bytes, () => {
      this.rendering -= bytes.byteLength;
      if (this.full && this.rendering < OUTPUT_HIGH_WATER / 2) {
        this.full = false;
        this.link?.drained();
      }
    });
    this.tail = (this.tail + this.decoder.decode(bytes, { stream: true })).slice(-256);
    this.onOutput(this.tail);
    this.full = this.rendering >= OUTPUT_HIGH_WATER;
    return !this.full;
  }

  resume(): void {
    this.delivering = false;
    this.flush();
  }

  private type(text: string): void {
    const bytes = this.encoder.encode(text);
    if (this.typedBytes + bytes.byteLength > INPUT_LIMIT) return;
    this.typed.push(bytes);
    this.typedBytes += bytes.byteLength;
    this.flush();
  }

  private flush(): void {
    if (this.delivering || this.link === undefined || this.typedBytes === 0) return;
    const all = new Uint8Array(this.typedBytes);
    let at = 0;
    for (const b of this.typed) {
      all.set(b, at);
      at += b.byteLength;
    }
    this.typed = [];
    this.typedBytes = 0;
    this.delivering = true;
    this.link.deliver(all);
  }
}
