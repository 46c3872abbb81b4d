// Regenerates the conformance figures in README.md (results per target) and docs/conformance.md (the
// catalogue's counts per family), between the markers <!-- conformance:begin --> and
// <!-- conformance:end -->, from a real run of the engine (dist/, so build first: `npm run
// conformance:table` does). Targets: our four devices in every mode with MSI-X on and off (and with
// the packed ring where the modern interface is reached), QEMU 7.2 and 10.0 on machines pc and q35
// with the same four devices in every mode, v86's console and net.
// `--check` changes nothing and exits 1 when either file differs from a fresh run (CI).
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CATALOGUE, FAMILIES } from '../dist/src/conformance/catalogue.js';
import { runConformance } from '../dist/src/conformance/runner.js';
import { summaryLine } from '../dist/src/conformance/result.js';
import { oursTarget, parseTarget } from '../dist/src/cli/conformance-targets.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const BEGIN = '<!-- conformance:begin -->';
const END = '<!-- conformance:end -->';
const TYPES = ['blk', 'net', 'console', 'rng'];
const MODES = ['modern', 'transitional', 'legacy'];
const QEMU_VERSIONS = ['7.2', '10.0'];
const QEMU_MACHINES = ['pc', 'q35'];
const QEMU_DEVICE = { blk: 'virtio-blk-pci', net: 'virtio-net-pci', console: 'virtio-serial-pci', rng: 'virtio-rng-pci' };
/** QEMU's properties for each mode, spelt out (q35's default is modern-only, pc's transitional). */
const QEMU_MODE = { modern: ',disable-legacy=on', transitional: ',disable-legacy=off', legacy: ',disable-modern=on' };
const V86_TYPES = ['console', 'net'];

const args = process.argv.slice(2);
const unknown = args.filter((a) => a !== '--check');
if (unknown.length > 0) {
  console.error(`conformance-table: unknown argument ${unknown.join(' ')}; usage: node scripts/conformance-table.mjs [--check]`);
  process.exit(2);
}
const check = args.includes('--check');

/** Every target of the table, grouped by who made the device. */
function targets() {
  const groups = [];
  const ours = [];
  for (const type of TYPES)
    for (const mode of MODES)
      for (const msix of [true, false])
        ours.push(oursTarget(`ours:${type},mode=${mode},msix=${msix ? 'on' : 'off'}`, { type, mode, msix, ring: 'split' }));
  // The packed ring is offered on the modern interface only (a legacy-only device cannot carry it).
  for (const type of TYPES)
    for (const mode of ['modern', 'transitional'])
      ours.push(oursTarget(`ours:${type},mode=${mode},msix=on,ring=packed`, { type, mode, msix: true, ring: 'packed' }));
  // The administration queue (VIRTIO_F_ADMIN_VQ) is offered only by a function given one.
  for (const type of TYPES)
    ours.push(oursTarget(`ours:${type},mode=modern,msix=on,admin=on`, { type, mode: 'modern', msix: true, ring: 'split', admin: true }));
  groups.push({ peer: 'virtio-ts', targets: ours });
  for (const qemu of QEMU_VERSIONS)
    for (const machine of QEMU_MACHINES) {
      const list = [];
      for (const type of TYPES)
        for (const mode of MODES) list.push(parseTarget(`qemu:${QEMU_DEVICE[type]}${QEMU_MODE[mode]}`, { machine, qemu }));
      groups.push({ peer: `QEMU ${qemu} (-M ${machine})`, targets: list });
    }
  groups.push({ peer: 'v86 0.5.462', targets: V86_TYPES.map((t) => parseTarget(`v86:${t}`, { machine: 'pc' })) });
  return groups;
}

const device = CATALOGUE.filter((s) => s.side === 'device');
const executable = device.filter((s) => s.check !== undefined);
const audited = CATALOGUE.filter((s) => s.audited === true);

function catalogueSummary() {
  return (
    `The catalogue holds ${CATALOGUE.length} statements of virtio 1.4: ${device.length} device-side ` +
    `(${executable.length} executable checks, ${device.length - executable.length} not checkable from the driver side) ` +
    `and ${CATALOGUE.length - device.length} driver-side (${audited.length} recorded by the driver audit, ` +
    `${CATALOGUE.length - device.length - audited.length} with why the audit cannot see them).`
  );
}

function catalogueTable() {
  const out = ['| family | statements | device side: checks | device side: not checkable | driver side |', '|---|---|---|---|---|'];
  for (const family of FAMILIES) {
    const of = CATALOGUE.filter((s) => s.family === family);
    const dev = of.filter((s) => s.side === 'device');
    const checks = dev.filter((s) => s.check !== undefined).length;
    out.push(`| ${family} | ${of.length} | ${checks} | ${dev.length - checks} | ${of.length - dev.length} |`);
  }
  out.push(
    `| all | ${CATALOGUE.length} | ${executable.length} | ${device.length - executable.length} | ${CATALOGUE.length - device.length} |`,
  );
  return out;
}

/**
 * Targets run side by side: a check spends most of its time waiting (for a used buffer, or to see
 * that none comes), so this takes a fraction of the time one after the other would, on two cores.
 */
const CONCURRENCY = 6;

/** Each generated row's failing results, so that a stale row can be explained by what failed this time. */
const failures = new Map();

/** Every device-side statement that cannot be checked from the driver side, with why. */
function notCheckableList() {
  return device.filter((s) => s.check === undefined).map((s) => `- \`${s.id}\` (${s.section}, ${s.level}): ${s.uncheckable}`);
}

async function resultsTable() {
  const jobs = targets().flatMap((group) => group.targets.map((target) => ({ peer: group.peer, target })));
  const rows = [];
  const started = Date.now();
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      const { peer, target } = jobs[i];
      const t0 = Date.now();
      const r = await runConformance(target, device);
      const c = r.counts;
      rows[i] =
        `| ${peer} | \`${target.label}\` | ${c.pass} | ${c.fail} | ${c['not-applicable']} | ${c['not-checkable']} | ${c.hung} | ${c.died} | ${r.failingMusts} |`;
      failures.set(
        rows[i],
        r.results
          .filter((x) => x.verdict === 'fail' || x.verdict === 'hung' || x.verdict === 'died')
          .map((x) => `${x.statement} (${x.via ?? '-'}): ${x.verdict}: ${x.reason ?? ''}`),
      );
      process.stderr.write(`${target.label}: ${summaryLine(c)} (${Date.now() - t0} ms)\n`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  process.stderr.write(`${jobs.length} targets in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  return [
    '| peer | target | pass | fail | n/a | not checkable | hung | died | MUSTs not met |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows,
  ];
}

/** `text` with the part between the markers replaced by `body`. */
function replaceSection(file, text, body) {
  const begin = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (begin < 0 || end < begin) throw new Error(`${file} has no ${BEGIN} ... ${END} section`);
  return `${text.slice(0, begin + BEGIN.length)}\n${body.join('\n')}\n${text.slice(end)}`;
}

if (device.length === 0) {
  console.error('conformance-table: the catalogue has no device-side statement: nothing to run');
  process.exit(1);
}
const results = await resultsTable();
const generated =
  'Generated by `npm run conformance:table` from a real run; `npm run conformance:table -- --check` exits 1 when it is stale.';
const files = {
  'README.md': [
    '',
    catalogueSummary(),
    '',
    'Results per target (each check through each interface it applies to; a transitional device runs',
    'modern checks through the modern interface and legacy checks through the legacy one):',
    '',
    ...results,
    '',
    generated,
    '',
  ],
  'docs/conformance.md': [
    '',
    catalogueSummary(),
    '',
    ...catalogueTable(),
    '',
    'Device-side statements that cannot be checked from the driver side, and why:',
    '',
    ...notCheckableList(),
    '',
    generated,
    '',
  ],
};
const stale = [];
for (const [file, body] of Object.entries(files)) {
  const path = `${ROOT}${file}`;
  const before = readFileSync(path, 'utf8');
  const after = replaceSection(file, before, body);
  if (after === before) continue;
  stale.push(file);
  if (!check) writeFileSync(path, after);
}
if (check && stale.length > 0) {
  // Name the rows that changed and what failed in them this run, so a verdict that moved can be found.
  const before = new Set(readFileSync(`${ROOT}README.md`, 'utf8').split('\n'));
  for (const row of results.filter((r) => r.startsWith('| ') && !before.has(r))) {
    console.error(`conformance-table: new row ${row}`);
    for (const f of failures.get(row) ?? []) console.error(`  ${f}`);
  }
  console.error(`conformance-table: ${stale.join(' and ')} differ from a fresh run: run \`npm run conformance:table\` and commit`);
  process.exit(1);
}
console.error(stale.length === 0 ? 'conformance-table: up to date' : `conformance-table: regenerated ${stale.join(', ')}`);
