// The Debian packages (npm run package:deb), built here and installed with real dpkg into
// throwaway roots (an overlay of the host's / in a private mount namespace, see
// test/fixtures/throwaway-root.ts; the host's dpkg database is never touched). The agent
// package: installed with the core URL, token and CA fingerprint in dpkg's environment, the
// unit's ExecStart run as its User against a real core, it enrolls and runs a job; upgraded
// to a -2 build it is the same agent with the same config; removed, its config and data
// stay; purged, they and the user go. The appliance package: `outpost` runs from it and a
// core it starts answers /api/v1/health. The one-line link: `curl -fsS URL | sh` from a core
// serving the .deb installs it with dpkg and the agent enrolls. lintian: no errors.
import { createHash, X509Certificate } from 'node:crypto';
import { copyFile, lstat, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger, validateConfig } from '@outpost/common';
import { coreConfigSchema, createCore, type Core } from '@outpost/core';
import type { TaskServer } from '@outpost/task-server';
import { e2eGate, freePort, grantFor, removeDir, tempDir, waitFor } from '@outpost/testing';
import { adminOk, testTaskServer } from '../fixtures/e2e.js';
import { runCommand, type Ran } from '../fixtures/run.js';
import { ThrowawayRoot } from '../fixtures/throwaway-root.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const gate = e2eGate('debian packages', {
  root: true,
  commands: ['dpkg', 'dpkg-deb', 'dpkg-shlibdeps', 'lintian', 'strip', 'unshare', 'nsenter', 'chroot', 'setpriv', 'curl', 'adduser'],
  other: process.platform === 'linux' && process.arch === 'x64' ? [] : ['linux x64'],
});
const AGENT_DEB = 'outpost-agent_0.1.0-1_amd64.deb';
const AGENT_DEB_2 = 'outpost-agent_0.1.0-2_amd64.deb';
const APPLIANCE_DEB = 'outpost_0.1.0-1_amd64.deb';
const WAIT = 60_000;
/** The agent's keys for a loopback test (quick heartbeats and polls, tickles on a free port): OUTPOST_AGENT__ overrides. */
const AGENT_ENV = {
  OUTPOST_AGENT__HEARTBEAT__VIA: 'http',
  OUTPOST_AGENT__HEARTBEAT__INTERVAL: '1s',
  OUTPOST_AGENT__CONFIG_POLL_INTERVAL: '1s',
  OUTPOST_AGENT__RETRY__BASE: '100ms',
  OUTPOST_AGENT__RETRY__CAP: '1s',
  OUTPOST_AGENT__TASKS__TICKLE_HOST: '127.0.0.1',
  OUTPOST_AGENT__TASKS__TICKLE_PORT: '0',
};

const ok = (r: Ran, what: string): Ran => {
  if (r.code !== 0) throw new Error(`${what}: exit ${r.code}\n${r.out}\n${r.err}`);
  return r;
};

/** `Key=value` lines of a unit's [Service], last value per key. */
function serviceKeys(unit: string): Map<string, string> {
  const keys = new Map<string, string>();
  let inService = false;
  for (const line of unit.split('\n')) {
    if (/^\[/.test(line)) inService = line.trim() === '[Service]';
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (inService && kv) keys.set(kv[1]!, kv[2]!);
  }
  return keys;
}

interface AgentRow {
  id: string;
  name: string;
}

describe.runIf(gate.run)('Debian packages', () => {
  let dir = '';
  let pkgs = '';
  let core: Core;
  let ts: TaskServer;
  let fingerprint = '';
  let lintian: Promise<Ran>;
  const roots: ThrowawayRoot[] = [];

  const newRoot = async (): Promise<ThrowawayRoot> => {
    const r = await ThrowawayRoot.create();
    roots.push(r);
    return r;
  };
  const agents = async (): Promise<AgentRow[]> => (await adminOk<{ items: AgentRow[] }>(core, 'GET', '/agents')).items;

  beforeAll(async () => {
    dir = await tempDir('outpost-deb-test-');
    pkgs = join(dir, 'pkgs');
    // gzip: quicker to build than the default xz, same packages otherwise.
    ok(await runCommand(process.execPath, [join(ROOT, 'scripts/package/deb.mjs'), '--out', pkgs, '--compress', 'gzip'], { cwd: ROOT, timeoutMs: 300_000 }), 'package:deb');
    // The -2 build (an upgrade) of the same single file, in a directory of its own: the core serves the -1.
    const exe = join(dir, 'x');
    ok(await runCommand('dpkg-deb', ['-x', join(pkgs, AGENT_DEB), exe]), 'dpkg-deb -x');
    ok(
      await runCommand(process.execPath, [join(ROOT, 'scripts/package/deb.mjs'), '--out', join(dir, 'pkgs2'), '--only', 'agent', '--revision', '2', '--agent-exe', join(exe, 'usr/bin/outpost-agent'), '--compress', 'gzip'], {
        cwd: ROOT,
        timeoutMs: 120_000,
      }),
      'package:deb -2',
    );
    // lintian takes a while on 5,000 files: it runs while the packages are installed.
    lintian = runCommand('lintian', ['--allow-root', join(pkgs, AGENT_DEB), join(pkgs, APPLIANCE_DEB)], { timeoutMs: 400_000 });
    lintian.catch(() => undefined);

    const data = join(dir, 'core');
    core = createCore(
      validateConfig(coreConfigSchema, { dataDir: data, http: { host: '127.0.0.1', port: 0 }, datagram: { host: '127.0.0.1', port: 0 }, install: { dir: pkgs } }, { file: '<test>' }),
      { logger: silentLogger() },
    );
    await core.start();
    fingerprint = createHash('sha256')
      .update(new X509Certificate(await readFile(join(data, 'ca', 'ca.crt'))).raw)
      .digest('hex');
    const ssToken = await core.createEnrollmentToken({ for: 'site-server', grant: grantFor({ task: {} }) });
    ts = testTaskServer({
      coreUrl: core.url,
      dataDir: join(dir, 'ts'),
      name: 'ts-deb',
      enrollToken: ssToken.token,
      agents: { tickleDropRate: 0, pollInterval: '2s', retickleAfter: '1s', retickles: 10 },
      forward: { retryBase: '100ms', retryCap: '500ms' },
    });
    await ts.start();
    await adminOk(core, 'POST', '/tasks', { name: 'whoami', kind: 'command', program: 'sh', args: ['-c', 'echo "hello from $(id -un)"'] });
    await adminOk(core, 'POST', '/jobs', { name: 'greet', steps: [{ task: 'whoami' }] });
  }, 420_000);

  afterAll(async () => {
    for (const r of roots) await r.destroy().catch(() => undefined);
    await ts?.stop();
    await core?.stop();
    await lintian?.catch(() => undefined);
    await removeDir(dir);
  }, 120_000);

  it('builds both packages with their fields, files, maintainer scripts and the hardened agent unit', async () => {
    const field = async (deb: string, f: string): Promise<string> => ok(await runCommand('dpkg-deb', ['-f', deb, f]), f).out.trim();
    const agent = join(pkgs, AGENT_DEB);
    expect(await field(agent, 'Package')).toBe('outpost-agent');
    expect(await field(agent, 'Version')).toBe('0.1.0-1');
    expect(await field(agent, 'Architecture')).toBe('amd64');
    expect(await field(agent, 'Depends')).toMatch(/^adduser, libc6 \(>= [\d.]+\)/);
    const files = ok(await runCommand('dpkg-deb', ['-c', agent]), 'dpkg-deb -c').out;
    for (const f of ['./usr/bin/outpost-agent', './lib/systemd/system/outpost-agent.service', './usr/share/doc/outpost-agent/copyright', './usr/share/doc/outpost-agent/changelog.Debian.gz']) {
      expect(files).toContain(f);
    }
    const control = join(dir, 'control');
    ok(await runCommand('dpkg-deb', ['-e', agent, control]), 'dpkg-deb -e');
    expect(await readFile(join(control, 'md5sums'), 'utf8')).toMatch(/^[0-9a-f]{32} {2}usr\/bin\/outpost-agent$/m);
    for (const s of ['postinst', 'prerm', 'postrm']) {
      expect(((await stat(join(control, s))).mode & 0o777).toString(8), s).toBe('755');
      expect(await readFile(join(control, s), 'utf8'), s).toMatch(/^#!\/bin\/sh\n(#.*\n)*set -e$/m);
    }
    // The unit is appliance/systemd/outpost-agent.service running the single file: same User, same hardening.
    const x = join(dir, 'x');
    const unit = serviceKeys(await readFile(join(x, 'lib/systemd/system/outpost-agent.service'), 'utf8'));
    const reference = serviceKeys(await readFile(join(ROOT, 'appliance/systemd/outpost-agent.service'), 'utf8'));
    expect(unit.get('ExecStart')).toBe('/usr/bin/outpost-agent run --config /etc/outpost/agent.yaml');
    for (const [k, v] of reference) if (k !== 'ExecStart') expect(unit.get(k), k).toBe(v);

    const appliance = join(pkgs, APPLIANCE_DEB);
    expect(await field(appliance, 'Package')).toBe('outpost');
    expect(await field(appliance, 'Version')).toBe('0.1.0-1');
    expect(await field(appliance, 'Depends')).not.toMatch(/nodejs/);
    const aFiles = ok(await runCommand('dpkg-deb', ['-c', appliance]), 'dpkg-deb -c').out;
    for (const f of [
      './usr/bin/outpost',
      './usr/lib/outpost/bin/node',
      './usr/lib/outpost/node_modules/@outpost/core/dist/index.js',
      './usr/lib/outpost/node_modules/@outpost/console/dist/index.html',
      './usr/lib/outpost/node_modules/classic-level/prebuilds/linux-x64/classic-level.node',
      './lib/systemd/system/outpost-core.service',
      './etc/outpost/core.yaml',
    ]) {
      expect(aFiles).toContain(f);
    }
    expect(aFiles).not.toContain('./lib/systemd/system/outpost-agent.service');
    expect(aFiles).not.toMatch(/prebuilds\/(darwin|win32|linux-arm)|\.musl\.node|\.npmignore/);
  });

  it('installs the agent with the core, token and CA pin from dpkg\'s environment; the unit\'s command, as its user, enrolls and runs a job', async () => {
    const root = await newRoot();
    const { token } = await core.createEnrollmentToken({ for: 'agent', uses: 1 });
    await copyFile(join(pkgs, AGENT_DEB), root.path(`/tmp/${AGENT_DEB}`));
    const install = ok(
      await root.run(['dpkg', '-i', `/tmp/${AGENT_DEB}`], { env: { OUTPOST_CORE_URL: core.url, OUTPOST_ENROLL_TOKEN: token, OUTPOST_CA_FINGERPRINT: fingerprint, OUTPOST_AGENT_NAME: 'deb-pc' } }),
      'dpkg -i',
    );
    expect(install.err).toContain('/etc/outpost/agent.yaml (mode 0600)');
    expect(ok(await root.run(['dpkg-query', '-W', '-f=${Version} ${db:Status-Status}', 'outpost-agent']), 'dpkg-query').out).toBe('0.1.0-1 installed');
    expect(ok(await root.run(['getent', 'passwd', 'outpost']), 'getent').out).toMatch(/^outpost:x:\d+:\d+:Outpost services[,]*:\/var\/lib\/outpost:\/usr\/sbin\/nologin$/m);
    const conf = ok(await root.sh('stat -c "%U:%G %a" /etc/outpost/agent.yaml /var/lib/outpost/agent'), 'stat').out.split('\n');
    expect(conf.slice(0, 2)).toEqual(['root:outpost 640', 'outpost:outpost 750']);
    const yaml = await readFile(root.path('/etc/outpost/agent.yaml'), 'utf8');
    expect(yaml).toContain(core.url);
    expect(yaml).toContain(token);
    expect(yaml).toContain(fingerprint);
    // deb-systemd-helper enabled the unit (no systemd runs here: nothing was started). lstat: the link is absolute, into the root.
    await expect(lstat(root.path('/etc/systemd/system/multi-user.target.wants/outpost-agent.service'))).resolves.toBeDefined();

    // What systemd would run: the installed unit's ExecStart as its User.
    const unit = serviceKeys(await readFile(root.path('/lib/systemd/system/outpost-agent.service'), 'utf8'));
    const agent = root.start(unit.get('ExecStart')!.split(' '), { user: unit.get('User')!, env: AGENT_ENV });
    const row = await waitFor(async () => (await agents()).find((a) => a.name === 'deb-pc'), { timeoutMs: WAIT, what: `the packaged agent enrolled (logs: ${agent.logs().slice(-2000)})` });
    // The core lists the agent a moment before the agent has written its identity.
    const identity = await waitFor(
      async () => {
        const text = await readFile(root.path('/var/lib/outpost/agent/identity.json'), 'utf8').catch(() => '');
        return text ? (JSON.parse(text) as { id: string }) : undefined;
      },
      { timeoutMs: WAIT, what: 'the agent wrote its identity' },
    );
    expect(identity.id).toBe(row.id);
    const run = await adminOk<{ id: string }>(core, 'POST', '/jobs/greet/runs', { agents: [row.id] });
    const show = await waitFor(
      async () => {
        const r = await adminOk<{ state: string; counts: Record<string, number> }>(core, 'GET', `/runs/${run.id}`);
        return r.state !== 'active' && r;
      },
      { timeoutMs: WAIT, what: `the run finished (agent logs: ${agent.logs().slice(-2000)})` },
    );
    expect(show.counts).toMatchObject({ succeeded: 1 });
    const detail = await adminOk<{ steps: Array<{ state: string; output?: string }> }>(core, 'GET', `/runs/${run.id}/agents/${row.id}`);
    expect(detail.steps[0]).toMatchObject({ state: 'succeeded', output: 'hello from outpost\n' });
    expect(await ThrowawayRoot.stop(agent.child)).toBe(0);

    // Upgrade to -2 (with another token in the environment): the config is not rewritten, the identity is kept.
    const confBefore = await readFile(root.path('/etc/outpost/agent.yaml'));
    await copyFile(join(dir, 'pkgs2', AGENT_DEB_2), root.path(`/tmp/${AGENT_DEB_2}`));
    const other = await core.createEnrollmentToken({ for: 'agent', uses: 1 });
    ok(await root.run(['dpkg', '-i', `/tmp/${AGENT_DEB_2}`], { env: { OUTPOST_CORE_URL: core.url, OUTPOST_ENROLL_TOKEN: other.token } }), 'dpkg -i -2');
    expect(ok(await root.run(['dpkg-query', '-W', '-f=${Version}', 'outpost-agent']), 'dpkg-query').out).toBe('0.1.0-2');
    expect(await readFile(root.path('/etc/outpost/agent.yaml'))).toEqual(confBefore);
    const again = root.start(unit.get('ExecStart')!.split(' '), { user: 'outpost', env: AGENT_ENV });
    await waitFor(() => /"msg":"agent running"/.test(again.logs()) && again.logs(), { timeoutMs: WAIT, what: `the upgraded agent running (logs: ${again.logs().slice(-2000)})` });
    expect(again.logs()).toContain(`"id":"${row.id}"`);
    expect(await ThrowawayRoot.stop(again.child)).toBe(0);
    expect((await agents()).filter((a) => a.name === 'deb-pc').map((a) => a.id)).toEqual([row.id]);

    // Remove: the program goes; config, identity and user stay.
    ok(await root.run(['dpkg', '-r', 'outpost-agent']), 'dpkg -r');
    await expect(stat(root.path('/usr/bin/outpost-agent'))).rejects.toThrow();
    expect(await readFile(root.path('/etc/outpost/agent.yaml'))).toEqual(confBefore);
    expect(JSON.parse(await readFile(root.path('/var/lib/outpost/agent/identity.json'), 'utf8'))).toMatchObject({ id: row.id });
    expect((await root.run(['getent', 'passwd', 'outpost'])).code).toBe(0);
    expect(ok(await root.run(['dpkg-query', '-W', '-f=${db:Status-Status}', 'outpost-agent']), 'dpkg-query').out).toBe('config-files');

    // Purge: config, data and user go.
    ok(await root.run(['dpkg', '-P', 'outpost-agent']), 'dpkg -P');
    await expect(stat(root.path('/etc/outpost/agent.yaml'))).rejects.toThrow();
    await expect(stat(root.path('/var/lib/outpost/agent'))).rejects.toThrow();
    await expect(lstat(root.path('/etc/systemd/system/multi-user.target.wants/outpost-agent.service'))).rejects.toThrow();
    expect((await root.run(['getent', 'passwd', 'outpost'])).code).toBe(2);
    expect((await root.run(['getent', 'group', 'outpost'])).code).toBe(2);
  }, 240_000);

  it('installs the appliance: outpost runs on its bundled Node.js and a core it starts answers /api/v1/health; purge removes data and user', async () => {
    const root = await newRoot();
    await copyFile(join(pkgs, APPLIANCE_DEB), root.path(`/tmp/${APPLIANCE_DEB}`));
    ok(await root.run(['dpkg', '-i', `/tmp/${APPLIANCE_DEB}`]), 'dpkg -i outpost');
    // No nodejs on PATH is used: the wrapper runs the bundled one.
    const version = ok(await root.run(['outpost', '--version'], { env: { PATH: '/usr/bin:/bin' } }), 'outpost --version');
    expect(version.out.trim()).toMatch(/^outpost 0\.1\.0 \(node v\d+\.\d+\.\d+\)$/);
    expect(ok(await root.run(['outpost', '--help']), 'outpost --help').out).toMatch(/^Usage: outpost <command>/);
    expect(await readFile(root.path('/etc/outpost/core.yaml'), 'utf8')).toBe(await readFile(join(ROOT, 'configs/core.yaml'), 'utf8'));
    // No role is enabled at install.
    await expect(lstat(root.path('/etc/systemd/system/multi-user.target.wants/outpost-core.service'))).rejects.toThrow();

    const port = await freePort();
    const udp = await freePort('udp');
    await mkdir(root.path('/var/lib/outpost/core'), { recursive: true });
    ok(await root.sh('chown outpost:outpost /var/lib/outpost/core && chmod 0750 /var/lib/outpost/core'), 'chown');
    await writeFile(
      root.path('/tmp/core.yaml'),
      `log: { level: warn }\ncore:\n  dataDir: /var/lib/outpost/core\n  http: { host: 127.0.0.1, port: ${port} }\n  datagram: { host: 127.0.0.1, port: ${udp} }\n`,
    );
    const service = root.start(['/usr/bin/outpost', 'start', '--config', '/tmp/core.yaml'], { user: 'outpost' });
    const health = await waitFor(
      async () => {
        const res = await fetch(`http://127.0.0.1:${port}/api/v1/health`).catch(() => undefined);
        return res?.ok ? ((await res.json()) as Record<string, unknown>) : undefined;
      },
      { timeoutMs: WAIT, what: `the packaged core's health (logs: ${service.logs().slice(-2000)})` },
    );
    expect(health).toMatchObject({ status: 'ok' });
    // Its level database (a native addon) is open in the data dir, owned by the service's user.
    expect(ok(await root.sh('stat -c %U /var/lib/outpost/core/admin-token'), 'stat').out.trim()).toBe('outpost');
    expect(await ThrowawayRoot.stop(service.child)).toBe(0);

    ok(await root.run(['dpkg', '-r', 'outpost']), 'dpkg -r outpost');
    await expect(stat(root.path('/var/lib/outpost/core/admin-token'))).resolves.toBeDefined();
    await expect(stat(root.path('/etc/outpost/core.yaml'))).resolves.toBeDefined();
    ok(await root.run(['dpkg', '-P', 'outpost']), 'dpkg -P outpost');
    await expect(stat(root.path('/var/lib/outpost'))).rejects.toThrow();
    await expect(stat(root.path('/etc/outpost/core.yaml'))).rejects.toThrow();
    expect((await root.run(['getent', 'passwd', 'outpost'])).code).toBe(2);
  }, 300_000);

  it('the one-line link as root with dpkg: curl -fsS URL | sh installs the .deb, starts the agent as outpost (no systemd) and it enrolls', async () => {
    const root = await newRoot();
    const { token } = await core.createEnrollmentToken({ for: 'agent', uses: 1 });
    const url = `${core.url}/install/agent.sh?token=${encodeURIComponent(token)}`;
    const r = await root.sh(`curl -fsS '${url}' | sh`, AGENT_ENV, 120_000);
    const pid = Number((await readFile(root.path('/run/outpost-agent.pid'), 'utf8').catch(() => '')).trim());
    try {
      expect(r.code, `${r.out}\n${r.err}`).toBe(0);
      expect(r.err).toContain('manifest signature verified');
      expect(r.err).toContain(`${AGENT_DEB}: sha256 verified`);
      expect(r.err).toContain('no systemd here');
      const id = /^outpost-agent enrolled: (ag_\S+)$/m.exec(r.out)?.[1];
      expect(id, `${r.out}\n${r.err}`).toBeDefined();
      expect((await agents()).some((a) => a.id === id)).toBe(true);
      expect(ok(await root.run(['dpkg-query', '-W', '-f=${Version} ${db:Status-Status}', 'outpost-agent']), 'dpkg-query').out).toBe('0.1.0-1 installed');
      // It runs as the unit would: as the outpost user.
      expect(pid).toBeGreaterThan(0);
      const uid = /^Uid:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1];
      expect(ok(await root.run(['getent', 'passwd', uid!]), 'getent').out).toMatch(/^outpost:/);
      // Removing the package stops the agent the script started.
      ok(await root.run(['dpkg', '-r', 'outpost-agent']), 'dpkg -r');
      // Gone, or a zombie its new parent has not reaped yet.
      const alive = async (): Promise<boolean> => /^State:\s+[^Z]/m.test(await readFile(`/proc/${pid}/status`, 'utf8').catch(() => ''));
      await waitFor(async () => !(await alive()), { timeoutMs: 20_000, what: 'the agent stopped by prerm' });
    } finally {
      if (pid > 0) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
    }
  }, 300_000);

  it('lintian finds no errors in either package', async () => {
    const r = await lintian;
    const lines = `${r.out}\n${r.err}`.split('\n');
    const errors = lines.filter((l) => /^E: /.test(l));
    expect(errors, lines.join('\n').slice(-4000)).toEqual([]);
    expect(lines.some((l) => /^W: outpost(-agent)?: /.test(l)), 'lintian ran on the packages').toBe(true);
  }, 420_000);
});
