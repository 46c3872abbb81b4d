/**
 * The browser page in a real browser (issue 15): Debian's chromium (scripts/setup.d/30-chromium.sh;
 * never a downloaded one), driven by playwright-core, loads the page from `virtio-ts serve` (run
 * in-process on a free port), waits for the guest's shell on the virtio console, types commands into
 * the terminal (a pattern written to /dev/vda and read back, bytes from /dev/hwrng, a ping of the
 * page's responder), reads their output from the terminal's DOM, checks that the live view's queue
 * counters moved, then loads the page again with transitional devices and force_legacy and checks that
 * every function shows the legacy interface. Screenshots go to test-results/browser/ (and to
 * docs/browser.png with VIRTIO_TS_DOCS_SCREENSHOT=1). Last, the same boot under Node (LinuxGuest, the
 * same devices and /init commands, cold) gives the figure the browser's boot is compared with.
 * A missing browser fails the test: it never skips.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { serve } from '../../src/cli/commands/serve.js';
import type { PageServer } from '../../src/cli/page-server.js';
import { BlkDevice } from '../../src/device/blk/blk-device.js';
import { MemoryBlockBackend } from '../../src/device/blk/memory-backend.js';
import { VirtioConsoleDevice } from '../../src/device/console/console-device.js';
import type { ConsoleBytePort } from '../../src/device/console/byte-port.js';
import { PingResponder } from '../../src/device/net/ping-responder.js';
import { VirtioNetDevice } from '../../src/device/net/net-device.js';
import { RngDevice } from '../../src/device/rng/rng-device.js';
import { LinuxGuest } from '../../src/platform/v86/linux-guest.js';

/** The browser: Debian's package, never a download (VIRTIO_TS_CHROMIUM overrides, as for the setup step). */
const CHROMIUM = process.env['VIRTIO_TS_CHROMIUM'] ?? '/usr/bin/chromium';
const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const ARTIFACTS = join(REPO, 'test-results', 'browser');
/** A cold boot to the shell under load (two cores shared with the other legs) can take minutes. */
const BOOT_TIMEOUT_MS = 420_000;
const COMMAND_TIMEOUT_MS = 90_000;
/** What the page does after /init's VT-READY, and the prompt it waits for (web/src/main.ts). */
const GUEST_ADDRESS = '10.0.86.2/24';
const PROMPT = /[#$] $/;
// eslint-disable-next-line no-control-regex -- ESC (0x1b) starts each terminal control sequence
const CONTROL_SEQUENCES = /\x1b\[[0-9;?]*[@-~]/g;

declare global {
  interface Window {
    /** The page's boot timings (web/src/main.ts). */
    virtioTsPage: { bootStartedAt: number | undefined; promptAt: number | undefined };
  }
}

type QueueCounters = Record<string, { avail: number; used: number; inFlight: number; interrupts: number }>;

/** The terminal's rows as text (xterm.js renders them as DOM rows; non-breaking spaces as spaces). */
function terminalText(page: Page): Promise<string> {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll('[data-testid="terminal"] .xterm-rows > div'))
      .map((row) => (row.textContent ?? '').replace(/\u00a0/g, ' ').trimEnd())
      .join('\n'),
  );
}

/** What went wrong, for a failure message: the state, the page's message and the end of the serial log. */
async function diagnostics(page: Page): Promise<string> {
  const state = await page.evaluate(() => ({
    state: document.querySelector('[data-testid="state"]')?.textContent,
    message: document.querySelector('#message')?.textContent,
    serial: (document.querySelector('#serial')?.textContent ?? '').slice(-3000),
  }));
  return `state ${state.state}, message "${state.message}"\n--- terminal ---\n${await terminalText(page)}\n--- serial (end) ---\n${state.serial}`;
}

/** Waits until the page's state is "running" with the prompt seen; returns boot-to-prompt milliseconds. */
async function waitForPrompt(page: Page): Promise<number> {
  try {
    await page.waitForFunction(
      () => {
        const state = document.querySelector('[data-testid="state"]')?.textContent;
        if (state === 'error') throw new Error(`the page is in state error: ${document.querySelector('#message')?.textContent}`);
        return state === 'running' && window.virtioTsPage.promptAt !== undefined;
      },
      undefined,
      { timeout: BOOT_TIMEOUT_MS, polling: 500 },
    );
  } catch (err) {
    throw new Error(`no shell prompt in the browser: ${err instanceof Error ? err.message : String(err)}\n${await diagnostics(page)}`, {
      cause: err,
    });
  }
  const times = await page.evaluate(() => window.virtioTsPage);
  return times.promptAt! - times.bootStartedAt!;
}

/** Types `line` into the terminal and returns the first match of `expect` in the terminal's text. */
async function run(page: Page, line: string, expect: RegExp): Promise<RegExpMatchArray> {
  await page.locator('[data-testid="terminal"]').click();
  await page.keyboard.type(line);
  await page.keyboard.press('Enter');
  const deadline = Date.now() + COMMAND_TIMEOUT_MS;
  for (;;) {
    const m = (await terminalText(page)).match(expect);
    if (m !== null) return m;
    if (Date.now() > deadline) throw new Error(`no ${expect} after typing "${line}"\n${await diagnostics(page)}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function queueCounters(page: Page): Promise<QueueCounters> {
  return page.evaluate(() => {
    const out: Record<string, { avail: number; used: number; inFlight: number; interrupts: number }> = {};
    for (const row of Array.from(document.querySelectorAll<HTMLElement>('[data-testid^="queue-"]')))
      out[row.dataset['testid']!] = {
        avail: Number(row.dataset['avail']),
        used: Number(row.dataset['used']),
        inFlight: Number(row.dataset['inFlight']),
        interrupts: Number(row.dataset['interrupts']),
      };
    return out;
  });
}

function interfaces(page: Page): Promise<Record<string, string | null>> {
  return page.evaluate(() =>
    Object.fromEntries(
      Array.from(document.querySelectorAll('[data-testid^="fn-"]')).map((e) => [
        e.getAttribute('data-testid'),
        e.getAttribute('data-interface'),
      ]),
    ),
  );
}

/** The page's boot under Node: the same devices, the same /init commands, a cold boot; milliseconds to the prompt. */
async function nodeBootToPrompt(responderIp: string): Promise<number> {
  const t0 = performance.now();
  let output = '';
  let onPrompt: (() => void) | undefined;
  const terminal: ConsoleBytePort = {
    write(bytes) {
      output = (output + new TextDecoder().decode(bytes)).slice(-256);
      if (PROMPT.test(output.replace(CONTROL_SEQUENCES, ''))) onPrompt?.();
      return true;
    },
  };
  const network = new PingResponder({ ip: responderIp });
  const guest = await LinuxGuest.boot({
    savedState: false,
    bootTimeoutMs: BOOT_TIMEOUT_MS,
    devices: [
      { name: 'blk', virtio: new BlkDevice({ backend: new MemoryBlockBackend(32 << 20) }) },
      { name: 'console', virtio: new VirtioConsoleDevice({ ports: [{ console: true, host: terminal }], size: { cols: 80, rows: 24 } }) },
      { name: 'rng', virtio: new RngDevice() },
      { name: 'net', virtio: new VirtioNetDevice({ backend: network }) },
    ],
  });
  try {
    assert.equal((await guest.command('load')).rc, 0, 'load');
    assert.equal((await guest.command(`netup eth0 ${GUEST_ADDRESS}`)).rc, 0, 'netup');
    const prompt = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no prompt on hvc0 under Node: ${JSON.stringify(output)}`)), COMMAND_TIMEOUT_MS);
      onPrompt = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    guest.sendSerial('shell hvc0\n');
    await prompt;
    return performance.now() - t0;
  } finally {
    await guest.destroy();
    await network.close();
  }
}

test(
  'the page in chromium: shell on the virtio console, blk/rng/net from the terminal, the live view moving, legacy on demand',
  { timeout: 1_800_000 },
  async (t) => {
    assert.ok(
      existsSync(CHROMIUM),
      `${CHROMIUM} is missing: the browser test needs Debian's chromium (npm run setup installs it as root: apt-get install chromium)`,
    );
    mkdirSync(ARTIFACTS, { recursive: true });
    const t0 = performance.now();
    let server: PageServer | undefined;
    let context: BrowserContext | undefined;
    const userDataDir = mkdtempSync(join(tmpdir(), 'virtio-ts-chromium-'));
    // Everything started here ends however the test ends, a signal from the test runner included.
    const cleanup = async (): Promise<void> => {
      await context?.close().catch(() => undefined);
      context = undefined;
      await server?.close().catch(() => undefined);
      server = undefined;
      rmSync(userDataDir, { recursive: true, force: true });
    };
    const onSignal = (signal: NodeJS.Signals): void => {
      void cleanup().finally(() => process.kill(process.pid, signal));
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    t.after(async () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      await cleanup();
    });

    server = await serve({ port: '0', host: '127.0.0.1' });
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_FLAGS,
      viewport: { width: 1400, height: 860 },
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));

    // 1. Modern devices, split ring: boot to the shell on hvc0.
    await page.goto(`${server.url}?mode=modern&ring=split&autoboot=1`);
    const browserBootMs = await waitForPrompt(page);
    const responderIp = (await page.locator('[data-testid="responder-ip"]').textContent())?.trim() ?? '';
    assert.match(responderIp, /^\d+\.\d+\.\d+\.\d+$/);
    assert.deepEqual(Object.values(await interfaces(page)).sort(), ['modern', 'modern', 'modern', 'modern']);
    const before = await queueCounters(page);

    // 2. Commands typed into the terminal; their output read back from the terminal.
    const nonce = randomBytes(8).toString('hex');
    await run(
      page,
      `echo -n vt-${nonce} | dd of=/dev/vda bs=512 conv=sync,fsync 2>/dev/null; echo 3 > /proc/sys/vm/drop_caches; echo BLK=$(dd if=/dev/vda bs=512 count=1 2>/dev/null | head -c 19)`,
      new RegExp(`BLK=vt-${nonce}`),
    );
    const rng = await run(
      page,
      'echo RNGDEV=$(cat /sys/class/misc/hw_random/rng_current) RNG=$(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | od -An -tx1 | tr -d " \\n")',
      /RNGDEV=(\S+) RNG=([0-9a-f]{64})/,
    );
    assert.match(rng[1]!, /^virtio_rng/, 'the bytes came from virtio-rng');
    assert.notEqual(rng[2], '0'.repeat(64));
    const ping = await run(
      page,
      `echo PING=$(ping -c 3 -W 3 ${responderIp} | grep transmitted)`,
      /PING=(\d+) packets transmitted, (\d+) (packets )?received/,
    );
    assert.deepEqual([ping[1], ping[2]], ['3', '3'], 'three echo requests, three replies from the page');

    // 3. The live view's counters moved with that traffic (it refreshes five times a second).
    const moved = (a: QueueCounters, b: QueueCounters, id: string) => b[id]!.used > a[id]!.used && b[id]!.interrupts > a[id]!.interrupts;
    let after = await queueCounters(page);
    for (let i = 0; i < 20 && !['queue-blk-0', 'queue-rng-0', 'queue-net-0', 'queue-net-1'].every((id) => moved(before, after, id)); i++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      after = await queueCounters(page);
    }
    for (const id of ['queue-blk-0', 'queue-rng-0', 'queue-net-0', 'queue-net-1'])
      assert.ok(
        moved(before, after, id),
        `${id}: used and interrupts move (before ${JSON.stringify(before[id])}, after ${JSON.stringify(after[id])})`,
      );
    assert.ok(after['queue-console-1']!.used > 0, 'the console carried the shell');
    await page.screenshot({ path: join(ARTIFACTS, 'page-modern.png') });
    if (process.env['VIRTIO_TS_DOCS_SCREENSHOT'] === '1') await page.screenshot({ path: join(REPO, 'docs', 'browser.png') });

    // 4. Transitional devices with force_legacy: Linux takes the legacy interface of each.
    await page.goto(`${server.url}?mode=transitional&ring=split&forceLegacy=1&autoboot=1`);
    const legacyBootMs = await waitForPrompt(page);
    let shown = await interfaces(page);
    for (let i = 0; i < 10 && Object.values(shown).some((v) => v !== 'legacy'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      shown = await interfaces(page);
    }
    assert.deepEqual(shown, { 'fn-blk': 'legacy', 'fn-console': 'legacy', 'fn-rng': 'legacy', 'fn-net': 'legacy' });
    await page.screenshot({ path: join(ARTIFACTS, 'page-legacy.png') });
    assert.deepEqual(pageErrors, [], 'no uncaught error in the page');
    await cleanup();

    // 5. The same boot under Node, for the comparison.
    const nodeBootMs = await nodeBootToPrompt(responderIp);
    const ratio = browserBootMs / nodeBootMs;
    const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    t.diagnostic(
      `boot to the shell prompt: browser ${s(browserBootMs)} (modern), ${s(legacyBootMs)} (transitional, force_legacy); Node ${s(nodeBootMs)}; browser/Node ${ratio.toFixed(2)} (target <= 2)`,
    );
    t.diagnostic(
      `screenshots: ${join(ARTIFACTS, 'page-modern.png')}, ${join(ARTIFACTS, 'page-legacy.png')}; whole test ${s(performance.now() - t0)}`,
    );
    console.log(`browser test: boot to prompt browser ${s(browserBootMs)}, Node ${s(nodeBootMs)}, ratio ${ratio.toFixed(2)} (target <= 2)`);
  },
);
