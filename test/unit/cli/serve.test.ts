// `virtio-ts serve`: the page, the guest's files and v86's, each with its content type; nothing outside
// them (path traversal in its encodings, files of the guest cache or of v86 not named); one-line errors
// for missing guest files, a missing page build and a port in use; nothing left after SIGINT or SIGTERM.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServeError } from '../../../src/errors.js';
import { PAGE_DIR, serve } from '../../../src/cli/commands/serve.js';
import { startPageServer } from '../../../src/cli/page-server.js';
import { assertNothingLeft, assertOneLineError, privateTmp, runCli } from '../../helpers/cli-process.js';

interface Reply {
  status: number;
  type: string | undefined;
  body: string;
}

/** A raw GET (fetch would normalise `..` away before sending). */
function get(url: string, path: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request({ host: u.hostname, port: u.port, path, method }, (res) => {
      let body = '';
      res.setEncoding('latin1').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, type: res.headers['content-type'], body }));
    });
    req.on('error', reject).end();
  });
}

/** A page build, a guest cache and a secret beside them, in a temporary folder. */
async function fixture(t: TestContext): Promise<{ page: string; guest: string; secret: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'virtio-ts-serve-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const page = join(dir, 'web');
  const guest = join(dir, 'guest');
  await mkdir(join(page, 'assets'), { recursive: true });
  await mkdir(join(guest, 'states'), { recursive: true });
  await writeFile(join(page, 'index.html'), '<!doctype html><title>page</title>');
  await writeFile(join(page, 'assets', 'index-1.js'), 'export {};');
  await writeFile(join(page, 'assets', 'index-1.css'), 'body{}');
  for (const f of ['vmlinuz', 'initramfs.cpio.gz', 'bios.bin', 'manifest', 'states/saved.bin']) await writeFile(join(guest, f), f);
  await writeFile(join(dir, 'secret'), 'secret');
  return { page, guest, secret: join(dir, 'secret') };
}

test('serve: the page, the guest files and v86, with their content types; HEAD; 405 for other methods', async (t) => {
  const { page, guest } = await fixture(t);
  process.env['VIRTIO_TS_GUEST_CACHE'] = guest;
  t.after(() => delete process.env['VIRTIO_TS_GUEST_CACHE']);
  const server = await serve({ port: '0', host: '127.0.0.1' }, page);
  t.after(() => server.close());
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const index = await get(server.url, '/');
  assert.deepEqual(index, { status: 200, type: 'text/html; charset=utf-8', body: '<!doctype html><title>page</title>' });
  assert.equal((await get(server.url, '/index.html?autoboot=1')).status, 200);
  assert.equal((await get(server.url, '/assets/index-1.js')).type, 'text/javascript; charset=utf-8');
  assert.equal((await get(server.url, '/assets/index-1.css')).type, 'text/css; charset=utf-8');
  assert.deepEqual(await get(server.url, '/guest/vmlinuz'), { status: 200, type: 'application/octet-stream', body: 'vmlinuz' });
  assert.equal((await get(server.url, '/guest/initramfs.cpio.gz')).body, 'initramfs.cpio.gz');
  const wasm = await get(server.url, '/v86/v86.wasm');
  assert.equal(wasm.type, 'application/wasm');
  assert.equal(wasm.body.slice(0, 4), '\0asm');
  assert.equal((await get(server.url, '/v86/libv86.mjs')).type, 'text/javascript; charset=utf-8');
  assert.deepEqual(await get(server.url, '/guest/bios.bin', 'HEAD'), { status: 200, type: 'application/octet-stream', body: '' });
  assert.equal((await get(server.url, '/', 'POST')).status, 405);
});

test('serve: 404 for paths outside its roots, in every spelling, and for files not named', async (t) => {
  const { page, guest } = await fixture(t);
  const server = await startPageServer({
    pageDir: page,
    files: { 'guest/': { vmlinuz: join(guest, 'vmlinuz') } },
    host: '127.0.0.1',
    port: 0,
  });
  t.after(() => server.close());
  for (const path of [
    '/../secret',
    '/assets/../../secret',
    '/%2e%2e/secret',
    '/assets/%2e%2e%2f%2e%2e%2fsecret',
    '/..%5csecret',
    '/assets/..\\..\\secret',
    '/%00index.html',
    '/%E0%A4%A', // not decodable
    '/guest/manifest',
    '/guest/states/saved.bin',
    '/guest/../guest/manifest',
    '/guest/%2e%2e/secret',
    '/guest/',
    '/guest/toString',
    '/assets',
    '/missing.js',
    '//etc/passwd',
  ]) {
    const reply = await get(server.url, path);
    assert.equal(reply.status, 404, path);
    assert.doesNotMatch(reply.body, /secret|manifest|saved/, path);
  }
});

test('serve: a missing page build and a port in use are ServeErrors saying what to do', async (t) => {
  const { page, guest } = await fixture(t);
  const missing = startPageServer({ pageDir: join(page, 'nowhere'), files: {}, host: '127.0.0.1', port: 0 });
  await assert.rejects(missing, (err: unknown) => {
    assert.ok(err instanceof ServeError);
    assert.equal(err.code, 'ERR_SERVE_PAGE_MISSING');
    assert.match(err.message, /npm run build/);
    return true;
  });
  const first = await startPageServer({ pageDir: page, files: {}, host: '127.0.0.1', port: 0 });
  t.after(() => first.close());
  const port = Number(new URL(first.url).port);
  await assert.rejects(
    startPageServer({ pageDir: page, files: { 'guest/': { vmlinuz: join(guest, 'vmlinuz') } }, host: '127.0.0.1', port }),
    {
      code: 'ERR_SERVE_PORT_IN_USE',
      message: `port ${port} on 127.0.0.1 is in use: choose another with --port`,
    },
  );
});

test('serve (command): one-line errors for missing guest files, a bad port and a port in use', async (t) => {
  const { guest } = await fixture(t);
  const tmp = await privateTmp(t);
  const noGuest = await runCli(['serve', '--port', '0'], { tmp, env: { VIRTIO_TS_GUEST_CACHE: join(guest, 'none') } });
  assertOneLineError(noGuest, /Linux guest assets missing .*npm run setup/, 'ERR_BUS');
  assertOneLineError(await runCli(['serve', '--port', '70000'], { tmp }), /--port 70000/, 'ERR_USAGE');
  const first = await startPageServer({ pageDir: PAGE_DIR, files: {}, host: '127.0.0.1', port: 0 });
  t.after(() => first.close());
  const busy = await runCli(['serve', '--port', new URL(first.url).port], { tmp, env: { VIRTIO_TS_GUEST_CACHE: guest } });
  assertOneLineError(busy, /is in use: choose another with --port/, 'ERR_SERVE_PORT_IN_USE');
});

for (const end of ['SIGINT', 'SIGTERM'] as const) {
  test(`serve (command): prints its URL, serves, and ${end} ends it leaving nothing behind`, async (t) => {
    const { guest } = await fixture(t);
    const tmp = await privateTmp(t);
    const run = await runCli(['serve', '--port', '0'], {
      tmp,
      env: { VIRTIO_TS_GUEST_CACHE: guest },
      at: /^virtio-ts serve: http:\/\/.*\n/m,
      end,
    });
    assert.equal(run.signal, end, `ended by the signal: ${run.stderr}`);
    assert.equal(run.stderr, '');
    assert.match(run.stdout, /^virtio-ts serve: http:\/\/127\.0\.0\.1:\d+\/ \(Ctrl-C stops\)\n$/);
    await assertNothingLeft(tmp, run, end);
  });
}
