// Attack tests for issue #14, "bounds and safe defaults": hostile input cannot hold
// resources, and the appliance is private out of the box. Each runs the attack against
// real services on loopback and asserts that its effect did not happen.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readConfigFile, validateConfig } from '@outpost/common';
import { coreConfigSchema, createCore, type Core } from '@outpost/core';
import { createPackageServer, loadPackageServerIdentity, packageServerConfigSchema, type PackageServer } from '@outpost/package-server';
import { createTftpServer, type TftpServer } from '@outpost/tftp';
import { e2eGate, grantFor, loopbackConfig, removeDir, tempDir, waitFor, type StatedServices } from '@outpost/testing';
import { apiFetch, testCore, testTaskServer } from '../fixtures/e2e.js';
import { startOutpost, type Running } from '../../appliance/test/helpers.js';

const ALL_IN_ONE = fileURLToPath(new URL('../../configs/all-in-one.yaml', import.meta.url));
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** The one place this file mints a site-server enrollment token, granted exactly the services it runs. */
function siteServerToken(core: Core, services: StatedServices, opts: Parameters<typeof grantFor>[1] = {}): Promise<{ token: string }> {
  return core.createEnrollmentToken({ for: 'site-server', uses: 1, grant: grantFor(services, opts) });
}

function run(cmd: string, args: string[], timeoutMs = 10_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

const rrq = (name: string, opts: Record<string, string | number>): Buffer =>
  Buffer.concat([Buffer.from([0, 1]), Buffer.from(`${name}\0octet\0`, 'latin1'), ...Object.entries(opts).map(([k, v]) => Buffer.from(`${k}\0${v}\0`, 'latin1'))]);

describe('TFTP: never-ACKed RRQs with timeout 255 cannot hold the boot slots', () => {
  const gate = e2eGate('bounds: tftp-hpa client', { commands: ['tftp'] });
  let dir: string;
  let server: TftpServer | undefined;
  const attackers: UdpSocket[] = [];

  afterAll(async () => {
    for (const s of attackers) s.close();
    await server?.stop();
    if (dir) await removeDir(dir);
  });

  it.runIf(gate.run)('200 RRQs asking timeout 255, never ACKed: the slots free up and a real tftp-hpa client gets its file within 5 s', async () => {
    dir = await tempDir('outpost-bounds-tftp-');
    const file = randomBytes(30_000);
    await writeFile(join(dir, 'undionly.kpxe'), file);
    // A stall limit sized for the test (the default is 10 s); the cap is netboot's 200.
    server = createTftpServer({ address: '127.0.0.1', port: 0, root: dir, maxTransfers: 200, stallMs: 1500 });
    await server.start();
    const port = server.address().port;
    const answers: Buffer[] = [];
    for (let i = 0; i < 201; i++) {
      const s = createSocket('udp4');
      attackers.push(s);
      await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
      s.on('message', (m) => answers.push(m));
    }
    const attackAt = performance.now();
    for (const s of attackers.slice(0, 200)) s.send(rrq('undionly.kpxe', { timeout: 255, blksize: 1432 }), port, '127.0.0.1');
    await waitFor(() => server!.counters.active === 200, { timeoutMs: 3000, what: 'the 200 attack transfers to start' });
    // The 201st is refused at once with an ERROR (not left to time out).
    const late: Buffer[] = [];
    attackers[200]!.removeAllListeners('message').on('message', (m) => late.push(m));
    attackers[200]!.send(rrq('undionly.kpxe', {}), port, '127.0.0.1');
    await waitFor(() => late.length > 0, { timeoutMs: 500, what: 'the busy ERROR' });
    expect(late[0]!.readUInt16BE(0)).toBe(5);
    // No OACK granted the 255 s timeout.
    for (const a of answers.filter((m) => m.readUInt16BE(0) === 6)) expect(a.toString('latin1')).not.toContain('timeout\u0000255');
    // A real PXE-style client, retrying as firmware does, gets the file within 5 s of the attack.
    const local = join(dir, 'got.kpxe');
    let got: Buffer | undefined;
    while (performance.now() - attackAt < 5000) {
      await run('tftp', ['-m', 'binary', '127.0.0.1', String(port), '-c', 'get', 'undionly.kpxe', local], 4000);
      got = await readFile(local).catch(() => undefined);
      if (got && sha(got) === sha(file)) break;
      got = undefined;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(got && sha(got), 'tftp-hpa fetched the file within 5 s').toBe(sha(file));
    expect(performance.now() - attackAt).toBeLessThan(5000);
    // The client may get a slot the first stalled attacker freed; the other attackers' transfers are ended by the same stall limit.
    await waitFor(() => server!.counters.stalled >= 200, { timeoutMs: 4000, what: 'every attack transfer ended as stalled' });
  }, 30_000);
});

describe('package files: idle downloads, disabled packages', () => {
  let dir: string;
  let core: Core;
  let ps: PackageServer;
  let pkgId: string;
  const big = randomBytes(24 * 1024 * 1024);
  const small = Buffer.from('config = 1\n');

  const call = async (method: string, path: string, body?: unknown, bearer = core.adminToken): Promise<{ status: number; json: Record<string, unknown>; bytes: Buffer }> => {
    const res = await apiFetch(core.url, bearer, method, path, body);
    const bytes = Buffer.from(await res.arrayBuffer());
    const text = res.headers.get('content-type')?.includes('json') ? bytes.toString() : '';
    return { status: res.status, json: (text ? JSON.parse(text) : {}) as Record<string, unknown>, bytes };
  };

  beforeAll(async () => {
    dir = await tempDir('outpost-bounds-pkg-');
    core = createCore(validateConfig(coreConfigSchema, { dataDir: join(dir, 'core'), http: { host: '127.0.0.1', port: 0 }, datagram: { host: '127.0.0.1', port: 0 } }, { file: '<test>' }));
    await core.start();
    await call('POST', '/sites', { name: 'hq', subnets: ['10.1.0.0/16'] });
    const { token } = await siteServerToken(core, { package: { constrained: false } }, { address: '10.1.0.5/24', addresses: ['127.0.0.1'] });
    ps = createPackageServer(
      validateConfig(
        packageServerConfigSchema,
        {
          name: 'hq-ps',
          coreUrl: core.url,
          dataDir: join(dir, 'ps'),
          enrollToken: token,
          address: '10.1.0.5/24',
          http: { host: '127.0.0.1', port: 0, idleTimeout: '1s' },
          tickle: { host: '127.0.0.1', port: 0 },
          reserveBytes: 0,
          timeout: '5s',
        },
        { file: '<test>' },
      ),
    );
    await ps.start();
    const files = { 'big.bin': big, 'etc/config.txt': small };
    const created = await call('POST', '/packages', { name: 'demo', version: '1', files: Object.entries(files).map(([path, b]) => ({ path, size: b.length, sha256: sha(b) })) });
    pkgId = String(created.json.id);
    for (const [path, b] of Object.entries(files)) expect((await call('PUT', `/packages/${pkgId}/files/${path}`, b)).status).toBe(200);
    expect((await call('POST', `/packages/${pkgId}/enable`, {})).status).toBe(200);
    await waitFor(async () => (await fetch(`${ps.url}/packages/${pkgId}/etc/config.txt`)).status === 200, { timeoutMs: 45_000, what: 'the package server to stage the package' });
  }, 90_000);

  afterAll(async () => {
    await ps?.stop();
    await core?.stop();
    await removeDir(dir);
  });

  it('a download the client never reads is closed within the idle timeout, and its slot freed', async () => {
    type Http = { active: number; idleTimeouts: number };
    const http = (): Http => (ps.stats() as unknown as { http: Http }).http;
    const u = new URL(ps.url);
    const sock: Socket = connect({ host: u.hostname, port: Number(u.port) });
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.pause();
    sock.write(`GET /packages/${pkgId}/big.bin HTTP/1.1\r\nHost: ${u.host}\r\n\r\n`);
    await waitFor(() => http().active === 1, { timeoutMs: 5000, what: 'the download to start' });
    const t0 = performance.now();
    await waitFor(() => http().active === 0, { timeoutMs: 8000, what: 'the idle download to be cut off' });
    expect(performance.now() - t0).toBeLessThan(6000);
    expect(http().idleTimeouts).toBe(1);
    // The client sees the connection end before the whole file.
    let received = 0;
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.on('data', (d: Buffer) => (received += d.length));
    sock.on('error', () => undefined);
    sock.resume();
    await closed;
    expect(received).toBeLessThan(big.length);
  }, 30_000);

  it("a disabled package's files are refused to an agent and a site server, served to the admin, and the package server withdraws it", async () => {
    const { token } = await core.createEnrollmentToken({ for: 'agent', uses: 1 });
    const enrolled = await fetch(`${core.url}/api/v1/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token, name: 'pc-1', ips: ['10.1.3.4/16'] }) });
    const agent = (await enrolled.json()) as { credential: string };
    const site = (await loadPackageServerIdentity(join(dir, 'ps')))!.credential;
    const path = `/packages/${pkgId}/files/etc/config.txt`;
    // Enabled: both may read it.
    expect((await call('GET', path, undefined, agent.credential)).bytes.equals(small)).toBe(true);
    expect((await call('GET', path, undefined, site)).status).toBe(200);
    expect((await call('POST', `/packages/${pkgId}/disable`, {})).status).toBe(200);
    for (const bearer of [agent.credential, site]) {
      const r = await call('GET', path, undefined, bearer);
      expect(r.status).toBe(403);
      expect((r.json.error as { code: string }).code).toBe('CORE_PACKAGE_DISABLED');
      expect(r.bytes.includes(small)).toBe(false);
    }
    const admin = await call('GET', path);
    expect(admin.status).toBe(200);
    expect(admin.bytes.equals(small)).toBe(true);
    // A netboot service reads it only while a boot image boots from it; the others stay refused.
    const nbToken = await core.createEnrollmentToken({ for: 'site-server', uses: 1, grant: grantFor({ netboot: {} }) });
    const nbEnrolled = await fetch(`${core.url}/api/v1/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: nbToken.token, name: 'nb-1', services: { netboot: {} } }) });
    const netboot = ((await nbEnrolled.json()) as { credential: string }).credential;
    expect((await call('GET', path, undefined, netboot)).status).toBe(403);
    expect((await call('POST', '/boot/images', { name: 'demo-image', package: 'demo', script: 'etc/config.txt' })).status).toBe(201);
    const nbRead = await call('GET', path, undefined, netboot);
    expect(nbRead.status).toBe(200);
    expect(nbRead.bytes.equals(small)).toBe(true);
    for (const bearer of [agent.credential, site]) expect((await call('GET', path, undefined, bearer)).status).toBe(403);
    // The package server learns of it (tickle) and stops serving it.
    await waitFor(async () => (await fetch(`${ps.url}/packages/${pkgId}/etc/config.txt`)).status === 404, { timeoutMs: 15_000, what: 'the package server to withdraw the disabled package' });
  }, 30_000);
});

describe('task server: unknown bearer ids cannot drive unbounded core lookups', () => {
  let dir: string;
  let core: Core;
  let ts: ReturnType<typeof testTaskServer>;

  beforeAll(async () => {
    dir = await tempDir('outpost-bounds-ts-');
    core = testCore(join(dir, 'core'));
    await core.start();
    const { token } = await siteServerToken(core, { task: {} }, { addresses: ['127.0.0.1'] });
    ts = testTaskServer({ coreUrl: core.url, dataDir: join(dir, 'ts'), name: 'ts-1', enrollToken: token });
    await ts.start();
  }, 60_000);

  afterAll(async () => {
    await ts?.stop();
    await core?.stop();
    await removeDir(dir);
  });

  it('5,000 distinct unknown ids cause a bounded number of core lookups; the rest are refused without one', async () => {
    type Sync = { lookups: number; lookupsLimited: number };
    const sync = (): Sync => (ts.stats() as unknown as { sync: Sync }).sync;
    const before = sync().lookups;
    const statuses = new Map<number, number>();
    const t0 = performance.now();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < 5000) {
        const i = next++;
        const res = await fetch(`${ts.url}/api/v1/agent/work`, { headers: { authorization: `Bearer forged-${i}.${'x'.repeat(43)}` } });
        await res.arrayBuffer();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    const seconds = (performance.now() - t0) / 1000;
    const lookups = sync().lookups - before;
    // The burst (50) plus 10 per second, and a little slack for timing.
    expect(lookups).toBeLessThanOrEqual(50 + Math.ceil(10 * seconds) + 5);
    expect(sync().lookupsLimited).toBeGreaterThanOrEqual(5000 - lookups);
    expect(statuses.get(200) ?? 0).toBe(0);
    expect((statuses.get(401) ?? 0) + (statuses.get(503) ?? 0)).toBe(5000);
  }, 60_000);
});

describe('outpost start with configs/all-in-one.yaml: loopback only, private data dirs', () => {
  let dir: string;
  let outpost: Running | undefined;
  let umask: number;

  const listeners = async (pid: number): Promise<string[]> => {
    const r = await run('ss', ['-H', '-lntup']);
    return r.stdout
      .split('\n')
      .filter((l) => l.includes(`pid=${pid},`))
      .map((l) => {
        const f = l.trim().split(/\s+/);
        return `${f[0]} ${f[4]}`;
      });
  };

  const walk = async (p: string, out: Array<{ path: string; mode: number; dir: boolean }>): Promise<void> => {
    const st = await stat(p);
    out.push({ path: p, mode: st.mode & 0o777, dir: st.isDirectory() });
    if (st.isDirectory()) for (const e of await readdir(p)) await walk(join(p, e), out);
  };

  beforeAll(async () => {
    dir = await tempDir('outpost-bounds-aio-');
    await mkdir(join(dir, 'loaders'));
    await writeFile(join(dir, 'loaders', 'undionly.kpxe'), Buffer.alloc(1000, 9));
    // The shipped file, ports 0 and proxyDHCP off (it binds 67/4011 only when it may; a test never answers DHCP on the host).
    const config = loopbackConfig(await readConfigFile(ALL_IN_ONE), 'http://127.0.0.1:8080') as Record<string, Record<string, unknown>>;
    config.netboot = { ...config.netboot, loaders: { dir: join(dir, 'loaders') } };
    config.log = { level: 'warn' };
    await mkdir(join(dir, 'configs'));
    await writeFile(join(dir, 'configs', 'aio.json'), JSON.stringify(config, null, 2));
    umask = process.umask(0o022);
    outpost = startOutpost(['--config', 'configs/aio.json'], { cwd: dir });
    await outpost.banner(45_000);
  }, 60_000);

  afterAll(async () => {
    process.umask(umask);
    await outpost?.stop('SIGKILL');
    await removeDir(dir);
  });

  it('binds every listener of the all-in-one config to 127.0.0.1', async () => {
    const pid = outpost!.child.pid!;
    const bound = await waitFor(async () => {
      const l = await listeners(pid);
      return l.length >= 8 && l;
    }, { timeoutMs: 20_000, what: 'the services to listen' });
    expect(bound.length).toBeGreaterThanOrEqual(8);
    expect(bound.filter((a) => !/^(tcp|udp) 127\.0\.0\.1:\d+$/.test(a)), bound.join(', ')).toEqual([]);
  }, 30_000);

  it('creates the data dirs 0700 and their files 0600 under umask 022, and warns at start about a loosened dir', async () => {
    const entries: Array<{ path: string; mode: number; dir: boolean }> = [];
    await waitFor(async () => (await readdir(join(dir, 'var'))).length >= 6, { timeoutMs: 20_000, what: 'every service data dir' });
    await walk(join(dir, 'var'), entries);
    expect(entries.filter((e) => !e.dir).length).toBeGreaterThan(10);
    // Public on purpose (agents and gateways are given it): the core CA's certificate and id, in the 0700 dir.
    const publicFiles = new Set(['ca.crt', 'core-id'].map((f) => join(dir, 'var', 'core', 'ca', f)));
    for (const e of entries.filter((x) => !publicFiles.has(x.path))) expect((e.mode & 0o077).toString(8), `${e.path} ${e.mode.toString(8)}`).toBe('0');
    expect(entries.find((e) => e.path === join(dir, 'var', 'core'))?.mode).toBe(0o700);
    expect(outpost!.stdout).not.toContain('data-dir-loose-modes');
    // Loosen one, restart: the start check names it and the fix.
    await outpost!.stop('SIGTERM', 20_000);
    await chmod(join(dir, 'var', 'task-server'), 0o755);
    outpost = startOutpost(['--config', 'configs/aio.json'], { cwd: dir });
    await outpost.banner(45_000);
    const line = await waitFor(() => outpost!.stdout.split('\n').find((l) => l.includes('data-dir-loose-modes')), { timeoutMs: 5000, what: 'the loose-mode warning' });
    const warn = JSON.parse(line) as { dataDir: string; fix: string; paths: string[] };
    expect(warn.dataDir).toBe('./var/task-server');
    expect(warn.fix).toBe('chmod -R go-rwx ./var/task-server');
    expect(warn.paths).toEqual(['./var/task-server 0755']);
  }, 90_000);
});
