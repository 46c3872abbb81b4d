// Layer rules of shared/DESIGN.md, checked by `npm run lint:layers` (dependency-cruiser).
// Data flows top to bottom: each layer imports only the layers below it. The rules name the target
// folders (bus/, core/, conformance/ come with the restructure); today's known violations are listed in
// .dependency-cruiser-known-violations.json so that only a NEW violation fails. The restructure empties
// that file (`npm run lint:layers:baseline` rewrites it).

const { readFileSync } = require('node:fs');
const { join } = require('node:path');

/** Layers from the top down; each entry is the folder regex (under src/) of one layer. */
const LAYERS = [
  ['cli', 'cli/'],
  ['conformance', 'conformance/'],
  ['platform', 'platform/'],
  // testing/: the test builders of virtio-ts/testing (mock queue, guarded memory, fake buses), which
  // stand on the driver half and the rings as a platform does
  ['testing', 'testing/'],
  ['driver', 'driver/'],
  ['device', 'device/'],
  ['transport', 'transport/'],
  ['core', 'core/'],
  ['queue', 'queue/'],
  ['bus', 'bus/'],
  ['pci', 'pci/'],
  ['memory', 'memory/'],
  // snapshot/: the device-state snapshot format and codec, under every layer that holds state
  ['snapshot', 'snapshot/'],
  ['spec', 'spec/'],
];

const src = (folders) => `^src/${folders}`;
/** One error module, with stable codes, that every layer may throw from (STYLE.md practice 4). */
const ERRORS = '^src/errors\\.ts$';
/** Package entry points: src/index.ts (browser-safe) and the per-platform src/{node,qemu,v86,testing}.ts. */
const ENTRIES = '^src/[^/]+\\.ts$';
const ALL_LAYERS = src(`(${LAYERS.map(([, dir]) => dir).join('|')})`);

/** For each layer, the rule that forbids importing any layer above it. */
const layerOrder = LAYERS.slice(1).map(([name, dir], i) => ({
  name: `layer-order-${name}`,
  comment: `${name}/ imports only the layers below it (DESIGN.md: ${
    LAYERS.slice(i + 2)
      .map(([n]) => n)
      .join(', ') || 'nothing'
  })`,
  severity: 'error',
  from: { path: src(dir) },
  to: {
    path: src(
      `(${LAYERS.slice(0, i + 1)
        .map(([, d]) => d)
        .join('|')})`,
    ),
  },
}));

/**
 * dependency-cruiser cannot list folder-scope violations in a baseline, so the folder-cycle rule joins
 * once the baseline is empty. Until then the layer-order rules stand in for it: a strict order of
 * folders admits no cycle between them.
 */
const KNOWN = join(__dirname, '.dependency-cruiser-known-violations.json');
const baselineEmpty = JSON.parse(readFileSync(KNOWN, 'utf8')).length === 0;
const folderCycles = {
  name: 'no-folder-cycles',
  comment: 'no cycles between folders',
  severity: 'error',
  scope: 'folder',
  from: { path: '^src/' },
  to: { circular: true },
};

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'spec-imports-nothing',
      comment: 'spec/ holds constants and layouts only: it depends on nothing else in src',
      severity: 'error',
      from: { path: src('spec/') },
      to: { path: '^src/', pathNot: src('spec/') },
    },
    {
      name: 'memory-imports-only-spec',
      comment: 'memory/ (guest memory access) depends only on spec/ and the error module',
      severity: 'error',
      from: { path: src('memory/') },
      to: { path: '^src/', pathNot: [src('(memory|spec)/'), ERRORS] },
    },
    {
      name: 'snapshot-imports-only-errors',
      comment: 'snapshot/ (the snapshot format and codec) depends only on the error module',
      severity: 'error',
      from: { path: src('snapshot/') },
      to: { path: '^src/', pathNot: [src('snapshot/'), ERRORS] },
    },
    {
      name: 'queue-no-transport-driver-device-platform',
      comment: 'ring formats never import transports, drivers, device models or platforms',
      severity: 'error',
      from: { path: src('queue/') },
      to: { path: src('(transport|driver|device|platform|cli|conformance)/') },
    },
    {
      name: 'device-no-pci-transport-driver-platform',
      comment: 'device models never see PCI, transports, the driver half or platforms',
      severity: 'error',
      from: { path: src('device/') },
      to: { path: src('(pci|bus|transport|driver|platform|cli|conformance)/') },
    },
    {
      name: 'driver-no-device',
      comment: 'the driver half never imports device models',
      severity: 'error',
      from: { path: src('driver/') },
      to: { path: src('device/') },
    },
    {
      name: 'platform-only-from-cli',
      comment: 'only the CLI, the per-platform entry points, benchmarks, tests and fuzz targets import platforms',
      severity: 'error',
      from: { pathNot: ['^src/(cli|platform)/', '^src/(index|node|qemu|v86|testing)\\.ts$', '^(test|bench|fuzz)/'] },
      to: { path: src('platform/') },
    },
    {
      name: 'main-entry-in-process-platform-only',
      comment: 'the main entry (browser-safe) exports the in-process machine, not the Node-only platforms',
      severity: 'error',
      from: { path: '^src/index\\.ts$' },
      to: { path: src('platform/'), pathNot: src('platform/machine\\.ts$') },
    },
    {
      name: 'errors-imports-nothing',
      comment: 'the error module sits under every layer, so it imports nothing from src',
      severity: 'error',
      from: { path: ERRORS },
      to: { path: '^src/' },
    },
    {
      name: 'layer-unknown-folder',
      comment: 'every folder in src is one of the layers of DESIGN.md: place a new folder in LAYERS first',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^src/', pathNot: [ALL_LAYERS, ERRORS, ENTRIES] },
    },
    {
      name: 'no-import-of-entry',
      comment: 'entry points re-export the layers; nothing inside src imports them',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: ENTRIES, pathNot: ERRORS },
    },
    ...(baselineEmpty ? [folderCycles] : []),
    {
      name: 'no-circular',
      comment: 'no import cycles between modules',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'every import resolves',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
    ...layerOrder,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // type-only imports are layer dependencies too
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
