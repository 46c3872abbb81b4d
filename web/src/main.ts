/**
 * The page: boots the project's Linux guest (the kernel, initramfs and BIOS `npm run setup` builds,
 * served by `virtio-ts serve` under guest/) in v86 (served under v86/, not bundled) with virtio-ts
 * devices on its PCI bus (plug-devices.ts), then drives the guest's /init over the serial console as
 * the Node harness does: load the virtio modules, configure virtio-net, and start a shell on hvc0,
 * the virtio console shown in the terminal. The disk lives in the page: a new boot finds what the
 * last one wrote.
 */
import '@xterm/xterm/css/xterm.css';
import './style.css';
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import type { V86 } from 'v86';
import { MemoryBlockBackend, PingResponder, TransportMonitor, VirtioPciFunction } from 'virtio-ts';
import { BASE_CMDLINE, POWEROFF_MARK, READY_MARK, SerialLog, parseDone, type V86PciAdapter } from 'virtio-ts/v86';
import { optionsProblem, queryOptions, type BootOptions } from './options.js';
import { plugDevices } from './plug-devices.js';
import { TerminalPort } from './terminal-port.js';
import { mountLiveView } from './live-view.js';

/** The guest's address on virtio-net, and the page's responder (a /24 of their own). */
const GUEST_ADDRESS = '10.0.86.2/24';
const RESPONDER_IP = '10.0.86.1';
const DISK_BYTES = 32 << 20;
/** Guest RAM: the initrd is loaded at 64 MiB. */
const MEMORY_BYTES = 128 << 20;
/** The shell's prompt (busybox sh: "/ # "), at the end of the console output once escape sequences are removed. */
const PROMPT = /[#$] $/;
/** Terminal control sequences (busybox asks for the cursor position after its prompt). */
// eslint-disable-next-line no-control-regex -- ESC (0x1b) starts each of them
const CONTROL_SEQUENCES = /\x1b\[[0-9;?]*[@-~]/g;

type State = 'idle' | 'booting' | 'running' | 'error';

/** Boot timings for tests and curious readers (performance.now() values). */
interface PageTimes {
  bootStartedAt: number | undefined;
  /** When the shell's prompt first appeared on the terminal. */
  promptAt: number | undefined;
}

declare global {
  interface Window {
    virtioTsPage: PageTimes;
  }
}

function element<T extends HTMLElement>(selector: string): T {
  const found = document.querySelector<T>(selector);
  if (found === null) throw new Error(`the page lacks ${selector}`);
  return found;
}

const form = element<HTMLFormElement>('#options');
const stateOut = element<HTMLOutputElement>('[data-testid="state"]');
const message = element<HTMLParagraphElement>('#message');
const serialPre = element<HTMLPreElement>('#serial');
const powerOff = element<HTMLButtonElement>('#power-off');
element('[data-testid="responder-ip"]').textContent = RESPONDER_IP;
element('#guest-ip').textContent = GUEST_ADDRESS;
element('#ping-hint').textContent = `ping -c 3 ${RESPONDER_IP}`;

const times: PageTimes = { bootStartedAt: undefined, promptAt: undefined };
window.virtioTsPage = times;

const terminal = new Terminal({ convertEol: false, fontSize: 13, scrollback: 5000 });
const fit = new FitAddon();
terminal.loadAddon(fit);
terminal.open(element('#terminal'));
fit.fit();
window.addEventListener('resize', () => fit.fit());

// The disk outlives each boot: what the guest wrote is there at the next one, and downloadable.
const image = new Uint8Array(DISK_BYTES);
const disk = new MemoryBlockBackend(image);

let state: State = 'idle';
let running: { emulator: V86; stop(): Promise<void> } | undefined;

function setState(next: State, text = ''): void {
  state = next;
  stateOut.value = next;
  message.textContent = text;
  message.classList.toggle('error', next === 'error');
  for (const control of form.querySelectorAll<HTMLInputElement | HTMLSelectElement | HTMLButtonElement>(
    'select, input, button[type=submit]',
  ))
    control.disabled = next === 'booting' || next === 'running';
  powerOff.disabled = running === undefined;
}

function readForm(): BootOptions {
  const query = new URLSearchParams({
    mode: element<HTMLSelectElement>('[data-testid="mode"]').value,
    ring: element<HTMLSelectElement>('[data-testid="ring"]').value,
    forceLegacy: element<HTMLInputElement>('[data-testid="force-legacy"]').checked ? '1' : '0',
  });
  return queryOptions(`?${query.toString()}`).options;
}

function writeForm(o: BootOptions): void {
  element<HTMLSelectElement>('[data-testid="mode"]').value = o.mode;
  element<HTMLSelectElement>('[data-testid="ring"]').value = o.ring;
  element<HTMLInputElement>('[data-testid="force-legacy"]').checked = o.forceLegacy;
}

/** A file the server holds, as v86 takes it; a clear error when it is not there. */
async function fetchImage(path: string): Promise<{ buffer: ArrayBuffer }> {
  const response = await fetch(path);
  if (!response.ok) throw new Error(`${path}: ${response.status} ${response.statusText} (is the page served by \`virtio-ts serve\`?)`);
  return { buffer: await response.arrayBuffer() };
}

/** The live view of the last boot (it stays up after power-off, until the next boot). */
let live: { dispose(): void } | undefined;

/** Watch every virtio function of `adapter` with a TransportMonitor, shown in the live view. */
function showFunctions(adapter: V86PciAdapter): void {
  live?.dispose();
  const monitor = new TransportMonitor();
  for (const f of adapter.functions) if (f.fn instanceof VirtioPciFunction) monitor.watch(f.fn, { bdf: f.devfn, name: f.name });
  const view = mountLiveView(element('#live-view'), monitor);
  live = {
    dispose() {
      view.dispose();
      monitor.dispose();
    },
  };
}

async function boot(options: BootOptions): Promise<void> {
  const problem = optionsProblem(options);
  if (problem !== undefined) return setState('error', problem);
  times.bootStartedAt = performance.now();
  times.promptAt = undefined;
  setState('booting', 'loading v86 and the guest…');
  terminal.reset();
  serialPre.textContent = '';
  const [bios, bzimage, initrd, v86] = await Promise.all([
    fetchImage('guest/bios.bin'),
    fetchImage('guest/vmlinuz'),
    fetchImage('guest/initramfs.cpio.gz'),
    import(/* @vite-ignore */ new URL('v86/libv86.mjs', document.baseURI).href) as Promise<{ V86: typeof V86 }>,
  ]);
  const emulator = new v86.V86({
    wasm_path: new URL('v86/v86.wasm', document.baseURI).href,
    // No VGA BIOS: v86 would map its ROM where SeaBIOS places PCI BARs (as the Node harness).
    bios,
    bzimage,
    initrd,
    // For the record in /proc/cmdline; busybox insmod does not read it, so "load" passes it too.
    cmdline: `${BASE_CMDLINE}${options.forceLegacy ? ' virtio_pci.force_legacy=1' : ''}`,
    memory_size: MEMORY_BYTES,
    autostart: false,
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
  });
  let port: TerminalPort | undefined;
  const network = new PingResponder({ ip: RESPONDER_IP });
  const stop = async () => {
    if (running?.emulator !== emulator) return;
    running = undefined;
    port?.dispose();
    await network.close();
    await emulator.destroy();
  };
  running = { emulator, stop };
  await new Promise<void>((resolve) => emulator.add_listener('emulator-loaded', () => resolve()));
  let shellStarted = false;
  port = new TerminalPort(terminal, (recent) => {
    if (!shellStarted || times.promptAt !== undefined || !PROMPT.test(recent.replace(CONTROL_SEQUENCES, ''))) return;
    times.promptAt = performance.now();
    const seconds = ((times.promptAt - times.bootStartedAt!) / 1000).toFixed(1);
    setState('running', `shell prompt ${seconds} s after Boot`);
    terminal.focus();
  });
  const adapter = plugDevices(emulator, {
    disk,
    terminal: port,
    network,
    size: { cols: terminal.cols, rows: terminal.rows },
    mode: options.mode,
    packed: options.ring === 'packed',
  });
  showFunctions(adapter);

  const serial = new SerialLog();
  let shown = false;
  const send = (line: string) => emulator.serial0_send(`${line}\n`);
  const fail = (why: string) => {
    setState('error', why);
    void stop();
  };
  emulator.add_listener('serial0-output-byte', (byte) => {
    const line = serial.push(byte);
    if (!shown) {
      shown = true;
      requestAnimationFrame(() => {
        shown = false;
        serialPre.textContent = serial.text;
      });
    }
    if (line === undefined) return;
    if (line.startsWith(READY_MARK)) {
      message.textContent = 'loading the virtio modules…';
      send(options.forceLegacy ? 'load force_legacy=1' : 'load');
    } else if (line.startsWith(POWEROFF_MARK)) {
      void stop().then(() => setState('idle', 'the guest powered off; Boot again: the disk keeps what it wrote'));
    }
    const done = parseDone(line);
    if (done === undefined) return;
    const [command, rc] = done;
    if (command === 'load') {
      if (rc !== 0) return fail(`the guest could not load the virtio modules (rc ${rc}): see the serial console`);
      send(`netup eth0 ${GUEST_ADDRESS}`);
    } else if (command === 'netup') {
      if (rc !== 0) message.textContent = `virtio-net not configured (rc ${rc}): see the serial console`;
      shellStarted = true;
      send('shell hvc0');
    } else if (command === 'shell' && rc !== 0) {
      fail(`no shell on hvc0 (rc ${rc}): see the serial console`);
    }
  });
  message.textContent = 'booting Linux…';
  await emulator.run();
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  if (state === 'booting' || state === 'running') return;
  boot(readForm()).catch(async (err: unknown) => {
    await running?.stop();
    setState('error', err instanceof Error ? err.message : String(err));
  });
});

powerOff.addEventListener('click', () => {
  void running?.stop().then(() => setState('idle', 'powered off; Boot again: the disk keeps what the guest wrote'));
});

element('[data-testid="download-disk"]').addEventListener('click', () => {
  const link = document.createElement('a');
  link.href = URL.createObjectURL(new Blob([image], { type: 'application/octet-stream' }));
  link.download = 'virtio-ts-disk.img';
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
});

const fromQuery = queryOptions(location.search);
writeForm(fromQuery.options);
setState('idle');
if (fromQuery.autoboot) form.requestSubmit();
