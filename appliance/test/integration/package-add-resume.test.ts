// `outpost package add` after a broken upload, with the real CLI in its own process and a
// TCP relay between it and the core that breaks the upload of the big file in the middle:
// either the relay cuts the connection (the CLI resumes in the same run), or it stalls it
// and the CLI is killed (running the command again resumes). Each time only the missing
// bytes cross the wire, the package becomes ready, and a package server serves it
// byte for byte.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Core } from '@outpost/core';
import type { PackageServer } from '@outpost/package-server';
import { removeDir, tempDir, waitFor } from '@outpost/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, spawnOutpost } from '../helpers.js';
import { startCoreAndPackageServer } from '../package-server-fixture.js';

const MiB = 1024 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** One upload request the relay saw go to the core: its target and declared body length. */
interface SeenPut {
  path: string;
  offset: number;
  length: number;
}

/**
 * A TCP relay to the core that reads the requests going through (request line and
 * Content-Length of each PUT) and counts bytes client → core. Armed with `breakAt`, the
 * first PUT of `breakPath` is broken once that many bytes of it went through: `cut`
 * destroys both sides, `stall` forwards nothing more until the client goes away.
 */
function relay(target: { host: string; port: number }) {
  const puts: SeenPut[] = [];
  const sockets = new Set<Socket>();
  const state = { bytesUp: 0, armed: undefined as { path: string; at: number; how: 'cut' | 'stall' } | undefined, broken: false };
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client);
    sockets.add(upstream);
    let head = '';
    let breakIn: number | undefined;
    let stalled = false;
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', close);
    upstream.on('close', close);
    client.on('error', close);
    upstream.on('error', close);
    upstream.on('data', (c: Buffer) => client.write(c));
    client.on('data', (c: Buffer) => {
      if (stalled) return;
      // Request heads, looked for in the latin1 text of what went up (bodies are binary);
      // `base` is where this chunk starts in `head`.
      head += c.toString('latin1');
      let base = head.length - c.length;
      for (let m; (m = /PUT \/api\/v1\/packages\/[^/ ]+\/files\/(\S+)\?offset=(\d+) HTTP\/1\.1\r\n([\s\S]*?)\r\n\r\n/i.exec(head)); ) {
        const path = decodeURIComponent(m[1]!);
        const length = Number(/^content-length:\s*(\d+)/im.exec(m[3]!)?.[1] ?? NaN);
        puts.push({ path, offset: Number(m[2]), length });
        const bodyStart = m.index + m[0].length;
        if (state.armed && !state.broken && breakIn === undefined && path === state.armed.path) breakIn = bodyStart - base + state.armed.at;
        head = head.slice(bodyStart);
        base -= bodyStart;
      }
      if (head.length > 64 * 1024) head = head.slice(-64 * 1024);
      if (breakIn !== undefined && !state.broken && breakIn <= c.length) {
        const part = c.subarray(0, breakIn);
        state.broken = true;
        state.bytesUp += part.length;
        if (state.armed?.how === 'stall') stalled = true;
        upstream.write(part, () => {
          if (state.armed?.how === 'cut') close();
        });
        return;
      }
      if (breakIn !== undefined && !state.broken) breakIn -= c.length;
      state.bytesUp += c.length;
      upstream.write(c);
    });
  });
  return {
    puts,
    state,
    async start(): Promise<number> {
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      return (server.address() as { port: number }).port;
    },
    arm(path: string, at: number, how: 'cut' | 'stall'): void {
      puts.length = 0;
      state.bytesUp = 0;
      state.broken = false;
      state.armed = { path, at, how };
    },
    passThrough(): void {
      puts.length = 0;
      state.bytesUp = 0;
      state.armed = undefined;
    },
    async stop(): Promise<void> {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('outpost package add resumes a broken upload', () => {
  let dir: string;
  let core: Core;
  let ps: PackageServer;
  let proxy: ReturnType<typeof relay>;
  let env: Record<string, string>;
  // Different content per case: the core holds a file once, whichever package brought it.
  const BIGS: Record<string, Buffer> = { cut: randomBytes(8 * MiB + 3), kill: randomBytes(8 * MiB + 5) };
  const README: Record<string, Buffer> = { cut: Buffer.from('read me\n'), kill: Buffer.from('read me too\n') };

  beforeAll(async () => {
    dir = await tempDir('outpost-pkg-resume-');
    ({ core, ps } = await startCoreAndPackageServer(dir, 'ps-resume'));
    proxy = relay({ host: '127.0.0.1', port: core.port });
    const port = await proxy.start();
    env = { OUTPOST_URL: `http://127.0.0.1:${port}`, OUTPOST_TOKEN: core.adminToken };
    for (const name of ['cut', 'kill']) {
      await mkdir(join(dir, name, 'bin'), { recursive: true });
      await writeFile(join(dir, name, 'bin', 'big.bin'), BIGS[name]!);
      await writeFile(join(dir, name, 'readme.txt'), README[name]!);
    }
  });

  afterAll(async () => {
    await proxy?.stop();
    await ps?.stop();
    await core?.stop();
    await removeDir(dir);
  });

  const uploadedBytes = async (): Promise<number> => {
    const res = await fetch(`${core.url}/api/v1/stats`, { headers: { authorization: `Bearer ${core.adminToken}` } });
    return ((await res.json()) as { packages: { uploadedBytes: number } }).packages.uploadedBytes;
  };

  /** Enables the package on the package server and checks its codebase serves the same bytes. */
  async function servedIdentically(name: string): Promise<void> {
    const BIG = BIGS[name]!;
    const cli = (...args: string[]) => runCli(args, { cwd: dir, env: { OUTPOST_URL: core.url, OUTPOST_TOKEN: core.adminToken }, timeoutMs: 30_000 });
    expect((await cli('package', 'enable', name)).code).toBe(0);
    type Show = { servers: { state: string; codebase?: string }[] };
    const view = await waitFor(
      async () => {
        const v = JSON.parse((await cli('package', 'show', name, '--json')).stdout) as Show;
        return v.servers.length === 1 && v.servers[0]!.state === 'ready' && v.servers[0]!.codebase !== undefined && v;
      },
      { timeoutMs: 45_000, what: `${name} ready on the package server` },
    );
    const res = await fetch(`${view.servers[0]!.codebase!}/bin/big.bin`);
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe(`"${sha(BIG)}"`);
    expect(sha(Buffer.from(await res.arrayBuffer()))).toBe(sha(BIG));
  }

  it('a connection cut mid-file: the same run resumes at what the core holds and sends only the rest', async () => {
    const BIG = BIGS.cut!;
    proxy.arm('bin/big.bin', 3 * MiB, 'cut');
    const before = await uploadedBytes();
    const r = await runCli(['package', 'add', join(dir, 'cut'), '--name', 'cut', '--version', '1', '--json'], { cwd: dir, env, timeoutMs: 45_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(proxy.state.broken).toBe(true);
    expect(r.stderr).toMatch(/upload of bin\/big\.bin failed \(.*\); retrying/);
    const out = JSON.parse(r.stdout) as { state: string; uploaded: { files: number; bytes: number } };
    expect(out.state).toBe('ready');
    // The big file went up from 0 and was cut after 3 MiB; then from where the core stood,
    // for the rest only (normally at once; after a busy answer if the core had not yet
    // seen the cut connection go).
    const bigPuts = proxy.puts.filter((p) => p.path === 'bin/big.bin');
    expect(bigPuts[0]).toEqual({ path: 'bin/big.bin', offset: 0, length: BIG.length });
    expect(bigPuts.length).toBeGreaterThanOrEqual(2);
    const resumedAt = bigPuts.at(-1)!.offset;
    for (const p of bigPuts.slice(1)) expect(p).toEqual({ path: 'bin/big.bin', offset: resumedAt, length: BIG.length - resumedAt });
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(3 * MiB);
    // What crossed the wire: 3 MiB, then the rest, and small requests (manifest, view, readme).
    if (bigPuts.length === 2) expect(proxy.state.bytesUp).toBeLessThan(3 * MiB + (BIG.length - resumedAt) + 64 * 1024);
    // The core took in the rest and the readme (the cut request is not counted as an upload).
    expect((await uploadedBytes()) - before).toBe(BIG.length - resumedAt + README.cut!.length);
    await servedIdentically('cut');
  });

  it('the CLI killed mid-file: running it again resumes at what the core holds and sends only the rest', async () => {
    const BIG = BIGS.kill!;
    proxy.arm('bin/big.bin', 5 * MiB, 'stall');
    const first = spawnOutpost(['package', 'add', join(dir, 'kill'), '--name', 'kill', '--version', '1'], { cwd: dir, env });
    try {
      // The core holds part of the big file; the upload is stalled in the middle.
      await waitFor(
        async () => {
          const res = await fetch(`${core.url}/api/v1/packages/kill@1`, { headers: { authorization: `Bearer ${core.adminToken}` } });
          if (res.status !== 200) return false;
          const v = (await res.json()) as { missing?: { path: string; received: number }[] };
          // A readme PUT the first run sent must be in at the core before `before` is read
          // (a loaded core may count it a moment after the stall).
          const readmeInFlight = proxy.puts.some((p) => p.path === 'readme.txt') && (v.missing ?? []).some((m) => m.path === 'readme.txt');
          return proxy.state.broken && !readmeInFlight && (v.missing?.find((m) => m.path === 'bin/big.bin')?.received ?? 0) > 0;
        },
        { timeoutMs: 45_000, what: 'part of bin/big.bin at the core, the rest stalled' },
      );
    } finally {
      first.child.kill('SIGKILL');
    }
    expect((await first.exited).signal).toBe('SIGKILL');

    proxy.passThrough();
    const before = await uploadedBytes();
    const r = await runCli(['package', 'add', join(dir, 'kill'), '--name', 'kill', '--version', '1', '--json'], { cwd: dir, env, timeoutMs: 45_000 });
    expect(r.code, r.stderr).toBe(0);
    const resumed = /resuming bin\/big\.bin at (\d+) of (\d+) bytes/.exec(r.stderr);
    // Either resumed from the start of the run, or (the core had not yet seen the killed
    // connection go) after one busy answer: both continue at what the core holds.
    const bigPuts = proxy.puts.filter((p) => p.path === 'bin/big.bin');
    const last = bigPuts.at(-1)!;
    expect(last.offset).toBeGreaterThan(0);
    expect(last.offset).toBeLessThanOrEqual(5 * MiB);
    expect(last.length).toBe(BIG.length - last.offset);
    if (resumed) expect(Number(resumed[1])).toBe(last.offset);
    const out = JSON.parse(r.stdout) as { state: string; uploaded: { bytes: number; resumedBytes: number } };
    expect(out.state).toBe('ready');
    // Only the missing part crossed the wire and reached the core (and the readme, if the
    // first run had not sent it before it was killed).
    const readme = proxy.puts.some((p) => p.path === 'readme.txt') ? README.kill!.length : 0;
    if (bigPuts.length === 1) expect(proxy.state.bytesUp).toBeLessThan(BIG.length - last.offset + 64 * 1024);
    expect((await uploadedBytes()) - before).toBe(BIG.length - last.offset + readme);
    await servedIdentically('kill');
  });
});
