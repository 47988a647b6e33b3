import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from '@outpost/testing';
import { AgentErrors } from '../../src/index.js';
import { writeEnrollConfig } from '../../src/cli/enroll-command.js';
import { loadAgentConfig } from '../../src/cli/agent-config-file.js';

let dir: string;
beforeEach(async () => {
  dir = await tempDir('outpost-enroll-cmd-');
});
afterEach(async () => {
  await removeDir(dir);
});

const FP = 'ab'.repeat(32);

describe('outpost-agent enroll (writeEnrollConfig)', () => {
  it('writes the config the service runs with, mode 0600, creating its directory', async () => {
    const file = join(dir, 'etc/outpost/agent.yaml');
    const w = await writeEnrollConfig({ configFile: file, coreUrl: 'http://core:8080', token: 'et_1.secret', caFingerprint: FP, dataDir: join(dir, 'var') });
    expect(w).toEqual({ configFile: file, coreUrl: ['http://core:8080'], dataDir: join(dir, 'var'), existingId: undefined });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(parseYaml(await readFile(file, 'utf8'))).toEqual({ coreUrl: 'http://core:8080', enrollToken: 'et_1.secret', caFingerprint: FP, dataDir: join(dir, 'var') });
    const config = await loadAgentConfig(file, {});
    expect(config).toMatchObject({ coreUrl: ['http://core:8080'], enrollToken: 'et_1.secret', caFingerprint: FP, dataDir: join(dir, 'var') });
  });

  it("keeps an existing file's other keys, replaces enrollTokenFile by the token, and updates a whole config's agent: section", async () => {
    const plain = join(dir, 'agent.yaml');
    await writeFile(plain, 'coreUrl: http://old:1\nenrollTokenFile: /run/token\nheartbeat:\n  via: http\n');
    await writeEnrollConfig({ configFile: plain, coreUrl: 'http://a:1,http://b:1', token: 't.1' });
    expect(parseYaml(await readFile(plain, 'utf8'))).toEqual({ coreUrl: 'http://a:1,http://b:1', enrollToken: 't.1', heartbeat: { via: 'http' } });

    const whole = join(dir, 'outpost.yaml');
    await writeFile(whole, 'core:\n  dataDir: /srv\nagent:\n  coreUrl: http://old:1\n  name: pc-9\n');
    await writeEnrollConfig({ configFile: whole, coreUrl: 'http://new:1', token: 't.2' });
    expect(parseYaml(await readFile(whole, 'utf8'))).toEqual({ core: { dataDir: '/srv' }, agent: { coreUrl: 'http://new:1', name: 'pc-9', enrollToken: 't.2' } });
  });

  it('refuses a bad URL or fingerprint without writing anything, and will not overwrite a file it cannot parse', async () => {
    const file = join(dir, 'agent.yaml');
    await expect(writeEnrollConfig({ configFile: file, coreUrl: 'core:8080', token: 't' })).rejects.toMatchObject({ code: 'COMMON_CONFIG_INVALID' });
    await expect(writeEnrollConfig({ configFile: file, coreUrl: 'http://core', token: 't', caFingerprint: 'abc' })).rejects.toMatchObject({ code: 'COMMON_CONFIG_INVALID' });
    await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
    await writeFile(file, 'a: [\n');
    await expect(writeEnrollConfig({ configFile: file, coreUrl: 'http://core', token: 't' })).rejects.toMatchObject({ code: AgentErrors.CONFIG_WRITE });
    expect(await readFile(file, 'utf8')).toBe('a: [\n');
  });

  it('says when the data dir already holds an identity (kept; the token then serves a cloned image only)', async () => {
    await mkdir(join(dir, 'var'), { recursive: true });
    await writeFile(join(dir, 'var/identity.json'), JSON.stringify({ id: 'ag_1' }));
    const w = await writeEnrollConfig({ configFile: join(dir, 'a.yaml'), coreUrl: 'http://core', token: 't', dataDir: join(dir, 'var') });
    expect(w.existingId).toBe('ag_1');
  });
});

describe('the agent config file', () => {
  it('takes OUTPOST_AGENT__<KEY> overrides for the core URL, the token and the CA fingerprint', async () => {
    const file = join(dir, 'agent.yaml');
    await writeFile(file, 'coreUrl: http://file:1\nenrollToken: from-file\n');
    const config = await loadAgentConfig(file, {
      OUTPOST_AGENT__CORE_URL: 'http://env:2',
      OUTPOST_AGENT__ENROLL_TOKEN: 'from-env',
      OUTPOST_AGENT__CA_FINGERPRINT: FP.toUpperCase(),
      OUTPOST_AGENT__MACHINE_ID_FILE: '/srv/machine-id',
    });
    expect(config).toMatchObject({ coreUrl: ['http://env:2'], enrollToken: 'from-env', caFingerprint: FP, machineIdFile: '/srv/machine-id' });
  });
});
