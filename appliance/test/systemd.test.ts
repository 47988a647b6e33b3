import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { e2eGate, removeDir, tempDir } from '@outpost/testing';

const UNITS = fileURLToPath(new URL('../systemd/', import.meta.url));
const ROLES = ['outpost', 'outpost-core', 'outpost-agent', 'outpost-package-server', 'outpost-task-server', 'outpost-netboot', 'outpost-gateway'];

/** A unit file as `section → key → values` (a key may repeat). Throws on a line it cannot read. */
function parseUnit(text: string, file: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const section = /^\[([A-Za-z]+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1]!, current);
      return;
    }
    const kv = /^([A-Za-z][A-Za-z0-9]*)=(.*)$/.exec(line);
    if (!kv || !current) throw new Error(`${file}:${i + 1}: not a key=value line in a section: ${raw}`);
    current.set(kv[1]!, [...(current.get(kv[1]!) ?? []), kv[2]!]);
  });
  return sections;
}

const units = new Map<string, Map<string, Map<string, string[]>>>();
beforeAll(async () => {
  for (const role of ROLES) units.set(role, parseUnit(await readFile(join(UNITS, `${role}.service`), 'utf8'), `${role}.service`));
});

describe('systemd units', () => {
  it('has exactly one unit per role', async () => {
    const files = (await readdir(UNITS)).filter((f) => f.endsWith('.service')).sort();
    expect(files).toEqual(ROLES.map((r) => `${r}.service`).sort());
  });

  it.each(ROLES)('%s runs `outpost start` on its own config, hardened', (role) => {
    const unit = units.get(role)!;
    const service = unit.get('Service')!;
    const one = (key: string): string | undefined => service.get(key)?.at(-1);
    const config = role === 'outpost' ? 'outpost' : role.slice('outpost-'.length);
    expect(one('ExecStart')).toBe(`/usr/bin/outpost start --config /etc/outpost/${config}.yaml`);
    expect(one('User')).toBe('outpost');
    expect(one('StateDirectory')).toBe(role === 'outpost' ? 'outpost' : `outpost/${config}`);
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('ProtectSystem')).toBe('strict');
    expect(one('ProtectHome')).toBe('yes');
    expect(one('PrivateTmp')).toBe('yes');
    expect(one('LimitNOFILE')).toBe('1048576');
    expect(one('Restart')).toBe('on-failure');
    expect(one('MemoryDenyWriteExecute')).toBeUndefined(); // V8 needs W+X pages
    expect(unit.get('Unit')?.get('Description')?.[0]).toMatch(/^Outpost \S/);
    expect(unit.get('Install')?.get('WantedBy')).toEqual(['multi-user.target']);
  });

  it('grants capabilities only to netboot, and only the two it needs', () => {
    for (const role of ROLES) {
      const service = units.get(role)!.get('Service')!;
      const caps = role === 'outpost-netboot' ? 'CAP_NET_BIND_SERVICE CAP_NET_RAW' : '';
      expect(service.get('AmbientCapabilities'), role).toEqual([caps]);
      expect(service.get('CapabilityBoundingSet'), role).toEqual([caps]);
    }
  });

  describe('systemd-analyze verify', () => {
    let dir: string | undefined;
    afterAll(async () => removeDir(dir));
    // The parser test above always runs; this one needs systemd's own tool (CI installs it).
    const gate = e2eGate('systemd-analyze verify', { commands: ['systemd-analyze'] });
    it.runIf(gate.run)('accepts every unit without a warning', async () => {
      dir = await tempDir('outpost-units-');
      // verify insists the ExecStart binary exists: point it at node for the check.
      for (const role of ROLES) {
        const text = await readFile(join(UNITS, `${role}.service`), 'utf8');
        await writeFile(join(dir, `${role}.service`), text.replace('/usr/bin/outpost', process.execPath));
      }
      const r = await promisify(execFile)('systemd-analyze', ['verify', '--man=no', ...ROLES.map((r) => join(dir!, `${r}.service`))], { timeout: 20_000 }).then(
        (ok) => ({ code: 0, stderr: ok.stderr }),
        (err: { code?: number; stderr?: string }) => ({ code: err.code ?? -1, stderr: err.stderr ?? '' }),
      );
      // Unknown keys are only warnings (exit 0), so the output must be empty too.
      expect(r.stderr.split('\n').filter((l) => l.includes('.service')).join('\n')).toBe('');
      expect(r.code).toBe(0);
    });
  });
});
