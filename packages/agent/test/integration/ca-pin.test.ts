import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger, validateConfig } from '@outpost/common';
import { coreConfigSchema, createCore, type Core } from '@outpost/core';
import { removeDir, tempDir, waitFor } from '@outpost/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { agentConfigSchema, AgentErrors, createAgent, createCoreClient, type AgentConfigInput, type OutpostAgent } from '../../src/index.js';

/**
 * The caFingerprint pin against real cores: an https core whose CA the agent has never
 * seen (no caFile) is trusted because its CA has the pinned fingerprint; a core whose CA
 * has another is refused before the token is spent.
 */

let dir: string;
let core: Core | undefined;
const agents: OutpostAgent[] = [];

beforeEach(async () => {
  dir = await tempDir('outpost-ca-pin-');
});
afterEach(async () => {
  for (const a of agents.splice(0)) await a.stop();
  await core?.stop();
  core = undefined;
  await removeDir(dir);
});

async function startCore(https: boolean): Promise<{ core: Core; fingerprint: string; token: string }> {
  const c = createCore(
    validateConfig(
      coreConfigSchema,
      { dataDir: join(dir, 'core'), http: { host: '127.0.0.1', port: 0 }, datagram: { host: '127.0.0.1', port: 0 }, ca: { https: { enabled: https } } },
      { file: '<test>' },
    ),
    { logger: silentLogger() },
  );
  await c.start();
  core = c;
  const pem = await readFile(join(dir, 'core/ca/ca.crt'), 'utf8');
  const { token } = await c.createEnrollmentToken({ for: 'agent', uses: 5 });
  return { core: c, fingerprint: new X509Certificate(pem).fingerprint256, token };
}

function agent(c: Core, token: string, overrides: Partial<AgentConfigInput>): OutpostAgent {
  const a = createAgent(
    validateConfig(
      agentConfigSchema,
      {
        coreUrl: c.url,
        dataDir: join(dir, 'agent'),
        name: 'pinned',
        enrollToken: token,
        machineIdFile: join(dir, 'machine-id'),
        heartbeat: { via: 'http', interval: '1h' },
        configPollInterval: '1h',
        retry: { base: '100ms', cap: '200ms' },
        tasks: { enabled: false },
        ...overrides,
      },
      { file: '<test>' },
    ),
    { logger: silentLogger() },
  );
  agents.push(a);
  return a;
}

const OTHER_CA = fileURLToPath(new URL('../fixtures/ca/other-ca.pem', import.meta.url));
const WRONG = 'sha256:' + 'ab'.repeat(32);

/** Uses left over every token, as the core's admin API tells them (over its own CA for https). */
async function tokensLeft(c: Core): Promise<number> {
  const admin = createCoreClient({ coreUrl: c.url, ca: [await readFile(join(dir, 'core/ca/ca.crt'), 'utf8')] });
  try {
    const { items } = await admin.call<{ items: Array<{ usesLeft: number }> }>('GET', '/tokens', { bearer: c.adminToken });
    expect(items.length).toBeGreaterThan(0);
    return items.reduce((n, t) => n + t.usesLeft, 0);
  } finally {
    admin.close();
  }
}

describe('caFingerprint against a real core', () => {
  it('enrolls with an https core of a private CA it was given only the fingerprint of', async () => {
    const { core: c, fingerprint, token } = await startCore(true);
    expect(c.url.startsWith('https://')).toBe(true);
    const a = agent(c, token, { caFingerprint: fingerprint });
    await a.start();
    expect(a.id).toMatch(/^ag_/);
    await expect(a.refreshConfig()).resolves.toBeDefined();
  });

  it('cannot reach that core without the pin (the system does not trust its CA)', async () => {
    const { core: c, token } = await startCore(true);
    const a = agent(c, token, {});
    await a.start();
    await waitFor(() => a.stats.heartbeatFailures > 0, { timeoutMs: 10_000, what: 'a failed enrollment attempt' });
    expect(a.id).toBeUndefined();
  });

  it('refuses an https core whose CA has another fingerprint with AGENT_CA_MISMATCH, before the token is sent', async () => {
    const { core: c, token, fingerprint } = await startCore(true);
    const before = await tokensLeft(c);
    const a = agent(c, token, { caFingerprint: WRONG });
    await expect(a.start()).rejects.toMatchObject({ code: AgentErrors.CA_MISMATCH, details: { expected: 'ab'.repeat(32), got: expect.arrayContaining([fingerprint.replace(/:/g, '').toLowerCase()]) } });
    expect(a.id).toBeUndefined();
    expect(await tokensLeft(c)).toBe(before);
    await expect(readFile(join(dir, 'agent/identity.json'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses an http core whose enrollment answer carries another CA, keeping no identity', async () => {
    const { core: c, token } = await startCore(false);
    const a = agent(c, token, { caFingerprint: WRONG });
    await expect(a.start()).rejects.toMatchObject({ code: AgentErrors.CA_MISMATCH, details: { expected: 'ab'.repeat(32) } });
    expect(a.id).toBeUndefined();
    await expect(readFile(join(dir, 'agent/identity.json'))).rejects.toMatchObject({ code: 'ENOENT' });
    // Over http the answer is what is checked: the token was spent on it.
    expect(await tokensLeft(c)).toBe(4);
  });

  it('enrolls with an http core whose CA has the pinned fingerprint', async () => {
    const { core: c, fingerprint, token } = await startCore(false);
    const a = agent(c, token, { caFingerprint: fingerprint });
    await a.start();
    expect(a.id).toMatch(/^ag_/);
  });

  it('refuses a caFile that is not the pinned CA', async () => {
    const { core: c, fingerprint, token } = await startCore(false);
    const a = agent(c, token, { caFingerprint: fingerprint, caFile: OTHER_CA });
    await expect(a.start()).rejects.toMatchObject({ code: AgentErrors.CA_MISMATCH });
  });
});
