import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url));
const run = promisify(execFile);

async function cli(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [MAIN, ...args], { timeout: 60_000 });
  return stdout;
}

test('virtio-ts demo --mode: the interface the driver committed to, why, its interrupts, and verified data', async () => {
  const cases: [string[], RegExp[]][] = [
    [
      ['--mode', 'modern'],
      [
        /\[1af4:1044\] \(rev 01\)/,
        /Probe: modern: common-cfg cap at 0x40/,
        /Driver: modern interface; interrupts: MSI-X, one vector per queue/,
      ],
    ],
    [
      ['--mode', 'transitional'],
      [
        /\[1af4:1005\] \(rev 00\)/,
        /; legacy BAR0 not used/,
        /Transitional device: driver committed to modern; 0 accesses through the other interface ignored/,
      ],
    ],
    [
      ['--mode', 'transitional', '--force-legacy'],
      [
        /Probe: legacy \(forced\): capabilities not used; BAR0 is I\/O/,
        /Driver: legacy interface \(forced\)/,
        /driver committed to legacy; 0 accesses/,
      ],
    ],
    [
      ['--mode', 'legacy', '--no-msix'],
      [
        /Probe: legacy: no common-cfg capability; BAR0 is I\/O \(32 ports/,
        /Driver: legacy interface; interrupts: INTx \(no MSI-X capability\)/,
      ],
    ],
    [['--mode', 'modern', '--interrupts', 'intx'], [/interrupts: INTx \(MSI-X not wanted\)/]],
  ];
  for (const [args, expect] of cases) {
    const out = await cli('demo', '--size', '1', ...args);
    for (const re of expect) assert.match(out, re, args.join(' '));
    assert.match(out, /checksums verified/, args.join(' '));
  }
});

test('virtio-ts demo --force-legacy on modern-only devices fails with the probe error; --mode is checked', async () => {
  await assert.rejects(cli('demo', '--size', '1', '--force-legacy'), (e: { stderr?: string; code?: number }) => {
    assert.match(e.stderr ?? '', /forceLegacy: no legacy interface: device ID 0x1044 is not transitional .*ERR_PROBE_LEGACY_UNAVAILABLE/);
    assert.equal(e.code, 1);
    return true;
  });
  await assert.rejects(cli('lspci', '--mode', 'hybrid'), (e: { stderr?: string }) =>
    /--mode hybrid: one of modern, transitional, legacy/.test(e.stderr ?? ''),
  );
});

test('virtio-ts lspci --mode legacy: BAR0 only, no capabilities; the probe explains the legacy choice', async () => {
  const out = await cli('lspci', '--mode', 'legacy', '--no-msix');
  assert.match(out, /Region 0: I\/O ports at [0-9a-f]+ \[size=32\]/);
  assert.doesNotMatch(out, /Region 4|Capabilities/);
  assert.match(out, /Probe: legacy: no common-cfg capability/);
});
