// Push install end to end: `outpost agent push` over a real OpenSSH server on loopback
// (its own host key, sshd_config and authorized keys in a temp dir), the real single-file
// agent served by a real core. A good host installs under a prefix and enrolls; a host
// that does not take our key is auth-failed; a port nobody answers is unreachable; a host
// whose uname says FreeBSD is unsupported-os.
// Needs root (sshd); skipped with the reason printed unless OUTPOST_E2E=required.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '@outpost/appliance';
import { silentLogger, validateConfig } from '@outpost/common';
import { coreConfigSchema, createCore, type Core } from '@outpost/core';
import { e2eGate, freePort, removeDir, tempDir } from '@outpost/testing';
import { recordingIo } from '../appliance/test/io.js';
import { adminOk } from './fixtures/e2e.js';
import { runCommand, type Ran } from './fixtures/run.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SSHD = '/usr/sbin/sshd';
const g = e2eGate('agent push e2e (sshd)', { root: true, commands: ['ssh', 'ssh-keygen', 'curl', 'sh'], other: existsSync(SSHD) ? [] : [`${SSHD} (apt openssh-server)`] });


const run = (cmd: string, args: string[]): Promise<Ran> => runCommand(cmd, args, { cwd: ROOT, timeoutMs: 300_000 });

async function listening(port: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1', () => {
        c.destroy();
        resolve(true);
      }).on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`sshd on ${port} not listening after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(!g.run)('outpost agent push over SSH', () => {
  let dir = '';
  let pkgDir = '';
  let core: Core | undefined;
  const sshds: ChildProcess[] = [];
  const sshdLog: string[] = [];

  /** An sshd on 127.0.0.1:port that lets root in with the keys in `authorized`. */
  async function startSshd(name: string, authorized: string, extra: string[] = []): Promise<number> {
    const port = await freePort();
    const config = join(dir, `${name}.sshd_config`);
    await writeFile(join(dir, `${name}.authorized_keys`), authorized);
    await writeFile(
      config,
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${join(dir, 'host_key')}`,
        `PidFile ${join(dir, `${name}.pid`)}`,
        `AuthorizedKeysFile ${join(dir, `${name}.authorized_keys`)}`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        'LogLevel VERBOSE',
        ...extra,
        '',
      ].join('\n'),
    );
    const p = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    p.stderr?.on('data', (d: Buffer) => sshdLog.push(`${name}: ${d.toString()}`));
    sshds.push(p);
    await listening(port, 10_000);
    return port;
  }

  beforeAll(async () => {
    dir = await tempDir('outpost-push-');
    pkgDir = join(dir, 'pkg');
    const built = await run('npm', ['run', 'package:agent', '--', '--out', pkgDir]);
    if (built.code !== 0) throw new Error(`npm run package:agent: ${built.code}\n${built.out}\n${built.err}`);
    // sshd's privilege separation directory (the package's service makes it; we run sshd ourselves).
    await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
    for (const k of ['host_key', 'id_good', 'id_other']) {
      const r = await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', k, '-f', join(dir, k)]);
      if (r.code !== 0) throw new Error(`ssh-keygen: ${r.err}`);
    }
    const coreDir = join(dir, 'core');
    core = createCore(
      validateConfig(coreConfigSchema, { dataDir: coreDir, http: { host: '127.0.0.1', port: 0 }, datagram: { host: '127.0.0.1', port: 0 }, install: { dir: pkgDir } }, { file: 'e2e' }),
      { logger: silentLogger() },
    );
    await core.start();
  }, 300_000);

  afterAll(async () => {
    const pid = Number(await readFile(join(dir, 'prefix', 'var', 'outpost-agent.pid'), 'utf8').catch(() => ''));
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    for (const p of sshds) p.kill('SIGTERM');
    await core?.stop();
    await new Promise((r) => setTimeout(r, 500));
    await removeDir(dir);
  }, 60_000);

  it('installs and enrolls on the good host; auth-failed, unreachable and unsupported-os name the others; exit 1', async () => {
    const good = await startSshd('good', await readFile(join(dir, 'id_good.pub'), 'utf8'));
    const wrongKey = await startSshd('wrong-key', await readFile(join(dir, 'id_other.pub'), 'utf8'));
    // A machine that says it is not Linux x86_64: its sessions find an uname that answers FreeBSD.
    const fakeBin = join(dir, 'freebsd-bin');
    await mkdir(fakeBin, { recursive: true });
    await writeFile(join(fakeBin, 'uname'), '#!/bin/sh\nif [ "$1" = -s ]; then echo FreeBSD; else echo amd64; fi\n', { mode: 0o755 });
    const freebsd = await startSshd('freebsd', await readFile(join(dir, 'id_good.pub'), 'utf8'), [`SetEnv PATH=${fakeBin}:/usr/bin:/bin`]);
    const nobody = await freePort();
    const hosts = [`127.0.0.1:${good}`, `127.0.0.1:${wrongKey}`, `127.0.0.1:${nobody}`, `localhost:${freebsd}`];
    const io = recordingIo(dir, { OUTPOST_URL: core!.url, OUTPOST_TOKEN: core!.adminToken });
    const code = await main(
      ['agent', 'push', ...hosts, '--ssh-user', 'root', '--ssh-key', join(dir, 'id_good'), '--known-hosts', join(dir, 'known_hosts'), '--prefix', join(dir, 'prefix'), '--concurrency', '4', '--json'],
      io,
    );
    const report = JSON.parse(io.stdout.join('\n')) as { items: Array<{ host: string; result: string; agent?: string; reason?: string; detail?: string }> };
    const byHost = new Map(report.items.map((r) => [r.host, r]));
    const context = `${JSON.stringify(report, null, 2)}\n${io.stderr.join('\n')}\n${sshdLog.join('')}`;
    expect(byHost.get(hosts[0]!)?.result, context).toBe('installed');
    expect(byHost.get(hosts[0]!)?.agent, context).toMatch(/^ag_/);
    expect(byHost.get(hosts[1]!), context).toMatchObject({ result: 'failed', reason: 'auth-failed' });
    expect(byHost.get(hosts[2]!), context).toMatchObject({ result: 'failed', reason: 'unreachable' });
    expect(byHost.get(hosts[3]!), context).toMatchObject({ result: 'failed', reason: 'unsupported-os' });
    expect(byHost.get(hosts[3]!)?.detail, context).toContain('FreeBSD amd64');
    expect(code).toBe(1);

    // The good host's agent is in the core's list; the token had one use per host.
    const agents = await adminOk<{ items: Array<{ id: string }> }>(core!, 'GET', '/agents');
    expect(agents.items.map((a) => a.id)).toContain(byHost.get(hosts[0]!)!.agent);
    const tokens = await adminOk<{ items: Array<{ uses: number; usesLeft: number; note?: string }> }>(core!, 'GET', '/tokens');
    expect(tokens.items.find((t) => t.note?.startsWith('outpost agent push'))).toMatchObject({ uses: 4, usesLeft: 3 });

    // The table form says the same.
    const table = recordingIo(dir, { OUTPOST_URL: core!.url, OUTPOST_TOKEN: core!.adminToken });
    expect(await main(['agent', 'push', `127.0.0.1:${nobody}`, '--ssh-user', 'root', '--known-hosts', join(dir, 'known_hosts')], table)).toBe(1);
    expect(table.stdout[0]).toMatch(/^HOST\s+RESULT\s+AGENT \/ REASON/);
    expect(table.stdout[1]).toMatch(/failed\s+unreachable: /);
  }, 120_000);
});
