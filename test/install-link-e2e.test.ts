// The one-line enrollment link end to end: a real core serving the real single-file agent
// (built here with `npm run package:agent`), `curl -fsS URL | sh` with OUTPOST_PREFIX in a
// temp dir; the installed agent enrolls and shows in the core's agents list. A link for a
// site downloads the agent from the site's real package server.
import { createHash, X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { silentLogger, validateConfig } from '@outpost/common';
import { coreConfigSchema, createCore } from '@outpost/core';
import { main } from '@outpost/appliance';
import { createPackageServer, packageServerConfigSchema } from '@outpost/package-server';
import { e2eGate, grantFor, removeDir, tempDir, waitFor } from '@outpost/testing';
import { recordingIo } from '../appliance/test/io.js';
import { adminOk, cleanupAfterEach } from './fixtures/e2e.js';
import { runCommand, type Ran } from './fixtures/run.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const g = e2eGate('install link e2e', { commands: ['sh', 'curl', 'openssl'] });

/** A real command to its end (a SEA build may take minutes on a busy machine), this process's environment plus `env`. */
const run = (cmd: string, args: string[], env: Record<string, string> = {}, cwd = ROOT): Promise<Ran> => runCommand(cmd, args, { env: { ...process.env, ...env }, cwd, timeoutMs: 300_000 });

describe.skipIf(!g.run)('the one-line enrollment link', () => {
  const cleanup = cleanupAfterEach();
  let pkgDir = '';

  beforeAll(async () => {
    pkgDir = await tempDir('outpost-install-pkg-');
    const built = await run('npm', ['run', 'package:agent', '--', '--out', pkgDir]);
    if (built.code !== 0) throw new Error(`npm run package:agent: ${built.code}\n${built.out}\n${built.err}`);
    return () => removeDir(pkgDir);
  }, 300_000);

  it('the printed curl -fsS URL | sh line installs the single-file agent under OUTPOST_PREFIX; it enrolls and is listed within seconds', async () => {
    const dataDir = await tempDir('outpost-install-core-');
    const prefix = await tempDir('outpost-install-prefix-');
    cleanup(() => removeDir(dataDir));
    cleanup(() => removeDir(prefix));
    const core = createCore(
      validateConfig(coreConfigSchema, { dataDir, http: { host: '127.0.0.1', port: 0 }, datagram: { host: '127.0.0.1', port: 0 }, install: { dir: pkgDir } }, { file: 'e2e' }),
      { logger: silentLogger() },
    );
    await core.start();
    cleanup(() => core.stop());
    // The line `outpost agent install-command` prints, run without sudo (OUTPOST_PREFIX, no root needed).
    const io = recordingIo(prefix, { OUTPOST_URL: core.url, OUTPOST_TOKEN: core.adminToken });
    expect(await main(['agent', 'install-command', '--uses', '1', '--expires', '10m'], io)).toBe(0);
    const line = io.stdout.join('\n');
    expect(line).toMatch(/^curl -fsS 'http:\/\/127\.0\.0\.1:\d+\/install\/agent\.sh\?token=[^']+' \| sudo sh$/);
    const url = /'([^']+)'/.exec(line)![1]!;
    const token = decodeURIComponent(new URL(url).searchParams.get('token')!);

    const started = Date.now();
    const r = await run('sh', ['-c', line.replace(/\| sudo sh$/, '| sh')], { OUTPOST_PREFIX: prefix });
    const pidFile = join(prefix, 'var', 'outpost-agent.pid');
    cleanup(async () => {
      const pid = Number(await readFile(pidFile, 'utf8').catch(() => ''));
      if (pid > 0) process.kill(pid, 'SIGTERM');
    });
    expect(r.code, `${r.out}\n${r.err}`).toBe(0);
    expect(r.err).toContain('manifest signature verified');
    expect(r.err).toContain('outpost-agent-linux-x64: sha256 verified');
    expect(r.err).toContain(`its log: ${join(prefix, 'var', 'log', 'outpost-agent.log')}`);
    const id = /^outpost-agent enrolled: (ag_\S+)$/m.exec(r.out)?.[1];
    expect(id, r.out).toBeDefined();

    // What was installed: the signed bytes, a private config naming the core and the token.
    const installed = await readFile(join(prefix, 'bin', 'outpost-agent'));
    const expected = (await readFile(join(pkgDir, 'outpost-agent-linux-x64.sha256'), 'utf8')).split(' ')[0];
    expect(createHash('sha256').update(installed).digest('hex')).toBe(expected);
    const conf = join(prefix, 'etc', 'agent.yaml');
    expect((await stat(conf)).mode & 0o777).toBe(0o600);
    const text = await readFile(conf, 'utf8');
    expect(text).toContain(core.url);
    expect(text).toContain(token);
    // The agent enrolls only with a core of this CA.
    const caPem = await readFile(join(dataDir, 'ca', 'ca.crt'), 'utf8');
    expect(text).toMatch(new RegExp(`^caFingerprint: ['"]?${createHash('sha256').update(new X509Certificate(caPem).raw).digest('hex')}`, 'm'));

    // Listed by the core within seconds of the script's end.
    let listed = false;
    while (!listed && Date.now() - started < 30_000) {
      const agents = await adminOk<{ items: Array<{ id: string; state: string }> }>(core, 'GET', '/agents');
      listed = agents.items.some((a) => a.id === id);
      if (!listed) await new Promise((res) => setTimeout(res, 200));
    }
    expect(listed).toBe(true);
    // The token's one use is spent: the link is dead now.
    expect((await fetch(url)).status).toBe(401);
  }, 120_000);

  it('over https the printed line pins the core CA with curl --cacert; the script downloads over it and the agent enrolls with the CA pinned', async () => {
    const dataDir = await tempDir('outpost-install-core-');
    const prefix = await tempDir('outpost-install-prefix-');
    cleanup(() => removeDir(dataDir));
    cleanup(() => removeDir(prefix));
    const core = createCore(
      validateConfig(
        coreConfigSchema,
        { dataDir, http: { host: '127.0.0.1', port: 0 }, datagram: { host: '127.0.0.1', port: 0 }, ca: { https: { enabled: true } }, install: { dir: pkgDir } },
        { file: 'e2e' },
      ),
      { logger: silentLogger() },
    );
    await core.start();
    cleanup(() => core.stop());
    expect(core.url).toMatch(/^https:/);
    // The CLI is a child here: it trusts the core's private CA the way an admin's shell would.
    const cli = await run(process.execPath, [join(ROOT, 'appliance', 'bin', 'outpost.js'), 'agent', 'install-command', '--url', core.url, '--token', core.adminToken], {
      NODE_EXTRA_CA_CERTS: join(dataDir, 'ca', 'ca.crt'),
    });
    expect(cli.code, cli.err).toBe(0);
    const line = cli.out.trim();
    expect(line).toMatch(/^printf '%s\\n' '-----BEGIN CERTIFICATE-----' .+ '-----END CERTIFICATE-----' > outpost-ca\.pem && curl -fsS --cacert outpost-ca\.pem 'https:\/\/127\.0\.0\.1:\d+\/install\/agent\.sh\?token=[^']+' \| sudo sh$/);

    const started = Date.now();
    const r = await run('sh', ['-c', line.replace(/\| sudo sh$/, '| sh')], { OUTPOST_PREFIX: prefix }, prefix);
    cleanup(async () => {
      const pid = Number(await readFile(join(prefix, 'var', 'outpost-agent.pid'), 'utf8').catch(() => ''));
      if (pid > 0) process.kill(pid, 'SIGTERM');
    });
    expect(r.code, `${r.out}\n${r.err}`).toBe(0);
    expect(await readFile(join(prefix, 'outpost-ca.pem'), 'utf8')).toBe(await readFile(join(dataDir, 'ca', 'ca.crt'), 'utf8'));
    const id = /^outpost-agent enrolled: (ag_\S+)$/m.exec(r.out)?.[1];
    expect(id, `${r.out}\n${r.err}`).toBeDefined();
    let listed = false;
    while (!listed && Date.now() - started < 30_000) {
      // This process does not trust the core's private CA: ask the core in-process.
      listed = id !== undefined && core.registry.store.agents.has(id);
      if (!listed) await new Promise((res) => setTimeout(res, 200));
    }
    expect(listed).toBe(true);

    // A server with another CA's certificate at that address is not trusted by the same line.
    const other = await tempDir('outpost-install-other-ca-');
    cleanup(() => removeDir(other));
    const otherCa = await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=other', '-days', '1', '-keyout', join(other, 'k.pem'), '-out', join(other, 'ca.pem')]);
    expect(otherCa.code, otherCa.err).toBe(0);
    const pem = (await readFile(join(other, 'ca.pem'), 'utf8')).trim().split('\n').map((l) => `'${l}'`).join(' ');
    const forged = line.replace(/^printf '%s\\n' .+? > outpost-ca\.pem/, `printf '%s\\n' ${pem} > outpost-ca.pem`);
    expect(forged).not.toBe(line);
    const refused = await run('sh', ['-c', forged.replace(/\| sudo sh$/, '| sh')], { OUTPOST_PREFIX: join(prefix, 'second') }, prefix);
    // curl refuses the TLS handshake, so sh gets no script (a pipeline's status is sh's).
    expect(refused.err).toMatch(/curl: \(60\)/);
    expect(refused.out).not.toContain('outpost-agent enrolled');
  }, 120_000);

  it("a link for a site downloads the agent from the site's package server (staged by install-command --site), verified, and the agent enrolls", async () => {
    const dataDir = await tempDir('outpost-install-core-');
    const prefix = await tempDir('outpost-install-prefix-');
    cleanup(() => removeDir(dataDir));
    cleanup(() => removeDir(prefix));
    const core = createCore(
      validateConfig(coreConfigSchema, { dataDir: join(dataDir, 'core'), http: { host: '127.0.0.1', port: 0 }, datagram: { host: '127.0.0.1', port: 0 }, install: { dir: pkgDir } }, { file: 'e2e' }),
      { logger: silentLogger() },
    );
    await core.start();
    cleanup(() => core.stop());
    await adminOk(core, 'POST', '/sites', { name: 'branch', subnets: ['10.9.0.0/16'] });
    const { token: psToken } = await core.createEnrollmentToken({ for: 'site-server', grant: grantFor({ package: { constrained: false } }, { address: '10.9.0.5/24', addresses: ['127.0.0.1'] }) });
    const ps = createPackageServer(
      validateConfig(
        packageServerConfigSchema,
        { name: 'branch-ps', coreUrl: core.url, dataDir: join(dataDir, 'ps'), constrained: false, enrollToken: psToken, address: '10.9.0.5/24', http: { host: '127.0.0.1', port: 0 }, tickle: { host: '127.0.0.1', port: 0 }, reserveBytes: 0 },
        { file: 'e2e' },
      ),
      { logger: silentLogger() },
    );
    await ps.start();
    cleanup(() => ps.stop());

    const io = recordingIo(prefix, { OUTPOST_URL: core.url, OUTPOST_TOKEN: core.adminToken });
    expect(await main(['agent', 'install-command', '--site', 'branch', '--uses', '1', '--expires', '10m'], io)).toBe(0);
    expect(io.stderr.join('\n')).toMatch(/^install files [0-9a-f]{12} staged to site branch: branch-ps (pending|downloading|ready)/m);
    const line = io.stdout.join('\n');
    const pkg = await waitFor(async () => {
      const items = (await adminOk<{ items: Array<{ id: string; name: string; servers: { ready: number } }> }>(core, 'GET', '/packages')).items;
      return items.find((p) => p.name === 'outpost-agent-install' && p.servers.ready === 1);
    }, { timeoutMs: 60_000, what: "the install files ready on the site's package server" });
    const served = (ps.stats() as unknown as { http: { bytes: number } }).http.bytes;

    const started = Date.now();
    const r = await run('sh', ['-c', line.replace(/\| sudo sh$/, '| sh')], { OUTPOST_PREFIX: prefix });
    cleanup(async () => {
      const pid = Number(await readFile(join(prefix, 'var', 'outpost-agent.pid'), 'utf8').catch(() => ''));
      if (pid > 0) process.kill(pid, 'SIGTERM');
    });
    expect(r.code, `${r.out}\n${r.err}`).toBe(0);
    expect(r.err).toContain(`outpost-agent-linux-x64: sha256 verified (from the site's package server ${ps.url}/packages/${pkg.id})`);
    // The bytes came from the package server, not the core.
    const size = (await stat(join(pkgDir, 'outpost-agent-linux-x64'))).size;
    expect((ps.stats() as unknown as { http: { bytes: number } }).http.bytes - served).toBe(size);
    const installed = await readFile(join(prefix, 'bin', 'outpost-agent'));
    expect(createHash('sha256').update(installed).digest('hex')).toBe((await readFile(join(pkgDir, 'outpost-agent-linux-x64.sha256'), 'utf8')).split(' ')[0]);
    const id = /^outpost-agent enrolled: (ag_\S+)$/m.exec(r.out)?.[1];
    expect(id, r.out).toBeDefined();
    await waitFor(() => core.registry.store.agents.has(id!), { timeoutMs: 30_000 - (Date.now() - started), what: 'the agent listed' });
  }, 180_000);
});
