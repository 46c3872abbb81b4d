// Runs the compiled test files with node's test runner. Usage: node scripts/test.mjs [unit|peer|browser|all] [filter]
// (filter = path substring). The peer suite is a matrix (dist/test/helpers/peers.js): test/peer/qemu
// once per QEMU version, test/peer/linux once per kernel, all legs side by side, each line prefixed
// with its leg; $VIRTIO_TS_PEERS=qemu-10.0,linux-6.5 picks legs. A leg whose peer is missing fails.
// The browser leg (test/browser: the page in Debian's chromium) runs last, alone, so that the boot
// times it reports are not those of a machine shared with the peer legs; without chromium it fails.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawn } from 'node:child_process';

const [suite = 'all', filter = ''] = process.argv.slice(2);
if (!['unit', 'peer', 'browser', 'all'].includes(suite)) {
  console.error(`unknown suite ${suite}: use unit, peer, browser or all`);
  process.exit(2);
}
const DIST = 'dist/test';
function walk(dir) {
  let out = [];
  let names;
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(walk(p));
    else if (name.endsWith('.test.js') && p.includes(filter)) out.push(p);
  }
  return out.sort();
}

const runs = [];
if (suite === 'unit' || suite === 'all') {
  const files = walk(join(DIST, 'unit'));
  if (files.length > 0) runs.push({ name: 'unit', files, env: {}, describe: 'unit tests' });
}
if (suite === 'peer' || suite === 'all') {
  let peers;
  try {
    peers = await import('../dist/test/helpers/peers.js');
  } catch (err) {
    console.error(`cannot load the peer matrix (did the build run?): ${err.message}`);
    process.exit(1);
  }
  const picked = process.env.VIRTIO_TS_PEERS?.split(',').filter(Boolean);
  const unknown = picked?.filter((name) => !peers.PEER_LEGS.some((leg) => leg.name === name)) ?? [];
  if (unknown.length > 0) {
    console.error(`VIRTIO_TS_PEERS: no leg ${unknown.join(', ')}; legs: ${peers.PEER_LEGS.map((leg) => leg.name).join(', ')}`);
    process.exit(2);
  }
  const firstOfDir = new Set();
  for (const leg of peers.PEER_LEGS) {
    const first = !firstOfDir.has(leg.dir);
    firstOfDir.add(leg.dir);
    if (picked && !picked.includes(leg.name)) continue;
    const files = walk(join(DIST, leg.dir)).filter((f) => first || !peers.LEG_INDEPENDENT_FILES.includes(relative(DIST, f)));
    if (files.length === 0) continue;
    let describe;
    try {
      describe = leg.check();
    } catch (err) {
      runs.push({ name: leg.name, files, env: leg.env, missing: err.message });
      continue;
    }
    runs.push({ name: leg.name, files, env: leg.env, describe });
  }
}
if (suite === 'browser' || suite === 'all') {
  const files = walk(join(DIST, 'browser'));
  const chromium = process.env.VIRTIO_TS_CHROMIUM ?? '/usr/bin/chromium';
  const missing = !existsSync(chromium)
    ? `${chromium} (Debian's chromium; npm run setup installs it as root)`
    : !existsSync('dist/web/index.html')
      ? 'the page build dist/web (npm run build makes it)'
      : undefined;
  if (files.length > 0) runs.push({ name: 'browser', files, env: {}, describe: `the page in ${chromium}`, missing });
}
if (runs.length === 0) {
  console.error('no test files found (did the build run?)');
  process.exit(1);
}

// Ending this runner ends every leg (their test files end their own peers).
const children = new Set();
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    for (const child of children) child.kill(signal);
    process.exitCode = 1;
  });
}

/** Runs one leg, each output line prefixed with its name when legs run side by side. */
function run(leg, concurrency, prefix) {
  const t0 = performance.now();
  const result = { name: leg.name, describe: leg.describe, tests: '?', pass: '?', fail: '?', counts: {}, seconds: 0, status: 1 };
  if (leg.missing) {
    console.error(`${prefix}FAIL: the peer of leg ${leg.name} is missing: ${leg.missing}`);
    result.describe = 'peer missing';
    return Promise.resolve(result);
  }
  console.log(`${prefix}${leg.describe}: ${leg.files.length} files`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...leg.files], {
      env: { ...process.env, ...leg.env },
      stdio: prefix ? ['ignore', 'pipe', 'pipe'] : 'inherit',
    });
    children.add(child);
    const onLine = (line) => {
      const m = /^\S+ (tests|suites|pass|fail|cancelled|skipped|todo) (\d+)$/.exec(line);
      if (m) {
        result.counts[m[1]] = Number(m[2]);
        if (m[1] in result) result[m[1]] = m[2];
      }
    };
    if (prefix) {
      for (const stream of [child.stdout, child.stderr]) {
        let pending = '';
        stream.setEncoding('utf8').on('data', (chunk) => {
          pending += chunk;
          let nl;
          while ((nl = pending.indexOf('\n')) >= 0) {
            const line = pending.slice(0, nl);
            pending = pending.slice(nl + 1);
            onLine(line);
            (stream === child.stdout ? process.stdout : process.stderr).write(`${prefix}${line}\n`);
          }
        });
      }
    }
    child.on('close', (code) => {
      children.delete(child);
      result.status = code ?? 1;
      result.seconds = (performance.now() - t0) / 1000;
      resolve(result);
    });
  });
}

// The unit tests alone (both cores), then every peer leg at once: each leg runs its files one at a
// time, so the legs share the cores instead of each taking two; then the browser leg alone.
const started = performance.now();
const results = [];
const unit = runs.filter((r) => r.name === 'unit');
const browser = runs.filter((r) => r.name === 'browser');
const legs = runs.filter((r) => r.name !== 'unit' && r.name !== 'browser');
for (const r of unit) results.push(await run(r, 2, legs.length > 0 ? '[unit] ' : ''));
const sideBySide = legs.length > 1;
results.push(
  ...(await Promise.all(legs.map((leg) => run(leg, sideBySide ? 1 : 2, sideBySide || unit.length > 0 ? `[${leg.name}] ` : '')))),
);
for (const r of browser) results.push(await run(r, 1, runs.length > 1 ? '[browser] ' : ''));
if (results.length > 1) {
  console.log('\nsummary');
  for (const r of results) {
    const verdict = r.status === 0 ? 'ok  ' : 'FAIL';
    console.log(
      `${verdict} ${r.name.padEnd(10)} tests ${r.tests} pass ${r.pass} fail ${r.fail}  ${r.seconds.toFixed(0)} s  ${r.describe ?? ''}`,
    );
  }
  // CI reads the closing lines of node's runner, and those of each leg are prefixed above (a single
  // leg prints its own unprefixed and last). So the run ends with the legs' counts added up in the
  // runner's own closing format, then the plain 'N passed, N failed' line. A leg that failed without
  // a failing test (its peer missing, a crash) counts as one failure, never as none.
  const sum = (key) => results.reduce((n, r) => n + (r.counts[key] ?? 0), 0);
  const failed = results.reduce((n, r) => n + Math.max(r.counts.fail ?? 0, r.status === 0 ? 0 : 1), 0);
  const totals = { tests: sum('tests') + failed - sum('fail'), suites: sum('suites'), pass: sum('pass'), fail: failed };
  for (const key of ['cancelled', 'skipped', 'todo']) totals[key] = sum(key);
  console.log('');
  for (const [key, value] of Object.entries(totals)) console.log(`\u2139 ${key} ${value}`);
  console.log(`\u2139 duration_ms ${(performance.now() - started).toFixed(3)}`);
  console.log(`\ntotal: ${totals.pass} passed, ${failed} failed`);
}
process.exit(results.every((r) => r.status === 0) ? 0 : 1);
