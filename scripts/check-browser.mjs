// Checks that modules are browser-safe: (1) esbuild bundles them for the browser and no `node:` import or
// Node built-in module is left in the bundle; (2) they typecheck without Node's types (no Buffer, process,
// NodeJS.*), following every import. Usage: node scripts/check-browser.mjs [file-or-folder ...]; without
// arguments, the modules in tsconfig.browser.json's "include" less its "exclude" (files): the main entry,
// src/index.ts, and so everything it reaches. Exits 1 naming each offending import or type error.
import { builtinModules } from 'node:module';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, parse, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BROWSER_TSCONFIG = join(ROOT, 'tsconfig.browser.json');

function tsFiles(path) {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((name) => tsFiles(join(path, name)))
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
}

const args = process.argv.slice(2);
const listed = JSON.parse(readFileSync(BROWSER_TSCONFIG, 'utf8'));
const excluded = new Set((args.length > 0 ? [] : (listed.exclude ?? [])).map((p) => resolve(ROOT, p)));
const entries = (args.length > 0 ? args : listed.include).flatMap((p) => tsFiles(resolve(ROOT, p))).filter((f) => !excluded.has(f));
if (entries.length === 0) {
  console.error('check:browser: no modules to check');
  process.exit(2);
}

const NODE_BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
const nodeImports = [];
const result = await build({
  stdin: { contents: entries.map((f) => `export * from ${JSON.stringify(f)};`).join('\n'), resolveDir: ROOT, loader: 'ts' },
  bundle: true,
  platform: 'browser',
  format: 'esm',
  write: false,
  metafile: true,
  logLevel: 'silent',
  plugins: [
    {
      name: 'node-builtins',
      setup(b) {
        // every import of a Node built-in (with or without the node: prefix) is recorded, not resolved
        b.onResolve({ filter: /.*/ }, (a) => {
          if (!a.path.startsWith('node:') && !NODE_BUILTINS.has(a.path.split('/')[0])) return undefined;
          nodeImports.push(`${a.importer === '<stdin>' ? '(entry)' : relative(ROOT, a.importer)} imports ${a.path}`);
          return { path: a.path, external: true };
        });
      },
    },
  ],
}).catch((e) => e);

let failed = false;
if (result instanceof Error) {
  failed = true;
  console.error(`check:browser: esbuild could not bundle for the browser:\n${result.message}`);
}
if (nodeImports.length > 0) {
  failed = true;
  console.error(
    `check:browser: Node built-ins in the browser bundle:\n${[...new Set(nodeImports)]
      .sort()
      .map((l) => `  ${l}`)
      .join('\n')}`,
  );
}

// The typecheck: the same modules under tsconfig.browser.json's options (types: [], DOM lib).
const dir = mkdtempSync(join(tmpdir(), 'virtio-ts-browser-'));
try {
  const config = join(dir, 'tsconfig.json');
  // rootDir at the file system's root: a module given on the command line may live outside the project
  const options = { rootDir: parse(ROOT).root };
  writeFileSync(config, JSON.stringify({ extends: BROWSER_TSCONFIG, compilerOptions: options, files: entries, include: [] }));
  const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', config, '--pretty', 'false'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  if (tsc.status !== 0) {
    failed = true;
    console.error(`check:browser: typecheck without Node's types failed:\n${tsc.stdout}${tsc.stderr}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

if (failed) process.exit(1);
// Every module the entries reach (the stdin wrapper aside).
const reached = Object.keys(result.metafile.inputs).filter((f) => f !== '<stdin>').length;
console.log(
  `check:browser: ${entries.map((f) => relative(ROOT, f)).join(', ')} (${reached} modules with their imports) bundle for the browser and typecheck without Node's types`,
);
