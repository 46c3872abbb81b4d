// The layer check (`npm run lint:layers`): today's tree passes against its known-violations baseline,
// and a new violation of each rule, planted in a copy of src/, fails the check under the rule's name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const DEPCRUISE = join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');
const CONFIG = '.dependency-cruiser.cjs';
const KNOWN = '.dependency-cruiser-known-violations.json';

function depcruise(cwd: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [DEPCRUISE, '--config', CONFIG, '--ignore-known', KNOWN, '--no-progress', 'src'], {
    cwd,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status, out: r.stdout + r.stderr };
}

/** A copy of the files the check reads, with node_modules linked for resolving package imports. */
function copyTree(): string {
  const dir = mkdtempSync(join(tmpdir(), 'virtio-ts-layers-'));
  for (const f of ['src', CONFIG, KNOWN, 'tsconfig.json', 'package.json']) cpSync(join(ROOT, f), join(dir, f), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return dir;
}

test("layers: today's tree has no violation beyond the known-violations baseline", () => {
  const r = depcruise(ROOT);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /no dependency violations found/);
});

test('layers: each planted violation fails the check with its rule name', (t) => {
  const dir = copyTree();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const plant = (file: string, line: string): void => appendFileSync(join(dir, 'src', file), `\n${line}\n`);
  // [rule, importing module, imported module]
  const expected: [string, string, string][] = [
    ['spec-imports-nothing', 'src/spec/ids.ts', 'src/errors.ts'],
    ['memory-imports-only-spec', 'src/memory/guest-memory.ts', 'src/queue/types.ts'],
    ['queue-no-transport-driver-device-platform', 'src/queue/types.ts', 'src/device/chain-bytes.ts'],
    ['device-no-pci-transport-driver-platform', 'src/device/rng/entropy.ts', 'src/transport/pci/probe.ts'],
    ['driver-no-device', 'src/driver/rng/rng-driver.ts', 'src/device/rng/rng-device.ts'],
    ['platform-only-from-cli', 'src/device/rng/rng-device.ts', 'src/platform/machine.ts'],
    ['layer-order-pci', 'src/pci/msix.ts', 'src/queue/types.ts'],
    ['layer-unknown-folder', 'src/pci/msix.ts', 'src/extra/thing.ts'],
    ['no-import-of-entry', 'src/cli/fill-pattern.ts', 'src/index.ts'],
    ['main-entry-in-process-platform-only', 'src/index.ts', 'src/platform/qtest/qtest-pci-bus.ts'],
    ['no-circular', 'src/extra/other.ts', 'src/extra/thing.ts'],
    ['snapshot-imports-only-errors', 'src/snapshot/codec.ts', 'src/spec/ids.ts'],
  ];
  plant('spec/ids.ts', "import '../errors.js';");
  plant('memory/guest-memory.ts', "import '../queue/types.js';");
  plant('queue/types.ts', "import '../device/chain-bytes.js';");
  plant('device/rng/entropy.ts', "import '../../transport/pci/probe.js';");
  plant('driver/rng/rng-driver.ts', "import '../../device/rng/rng-device.js';");
  plant('device/rng/rng-device.ts', "import '../../platform/machine.js';");
  plant('pci/msix.ts', "import '../queue/types.js';\nimport '../extra/thing.js';");
  plant('cli/fill-pattern.ts', "import '../index.js';");
  plant('index.ts', "import './platform/qtest/qtest-pci-bus.js';");
  plant('snapshot/codec.ts', "import '../spec/ids.js';");
  mkdirSync(join(dir, 'src/extra'));
  writeFileSync(join(dir, 'src/extra/thing.ts'), "import './other.js';\nexport const thing = 1;\n");
  writeFileSync(join(dir, 'src/extra/other.ts'), "import './thing.js';\nexport const other = 2;\n");

  const r = depcruise(dir);
  assert.notEqual(r.status, 0, r.out);
  for (const [rule, from, to] of expected) {
    const line = new RegExp(`error ${rule}: ${from.replace(/[.]/g, '\\.')} → (.|\\n)*?${to.replace(/[.]/g, '\\.')}`);
    assert.match(r.out, line, `${rule}: ${from} -> ${to}\n${r.out}`);
  }
});

test('layers: with an empty baseline, a planted cycle between folders fails under no-folder-cycles', (t) => {
  const dir = copyTree();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, KNOWN), '[]\n');
  // Two folders that import each other through different files: no module cycle, a folder cycle.
  mkdirSync(join(dir, 'src/extra/a'), { recursive: true });
  mkdirSync(join(dir, 'src/extra/b'));
  writeFileSync(join(dir, 'src/extra/a/x.ts'), "import '../b/y.js';\nexport const x = 1;\n");
  writeFileSync(join(dir, 'src/extra/a/w.ts'), 'export const w = 1;\n');
  writeFileSync(join(dir, 'src/extra/b/y.ts'), 'export const y = 1;\n');
  writeFileSync(join(dir, 'src/extra/b/z.ts'), "import '../a/w.js';\nexport const z = 1;\n");
  const r = depcruise(dir);
  assert.notEqual(r.status, 0, r.out);
  assert.match(r.out, /error no-folder-cycles: src\/extra\/(a|b) → \n\s+src\/extra\/(a|b)/);
});
