import { readFileSync } from 'node:fs';

/**
 * The package's version, read from package.json at run time. This file runs as dist/src/cli/version.js,
 * three folders below the package root; reading the file avoids JSON module imports, whose syntax Node 20
 * and TypeScript's NodeNext settings do not agree on.
 */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  if (typeof pkg.version !== 'string') throw new Error('package.json has no version');
  return pkg.version;
}
