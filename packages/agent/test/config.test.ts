import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig, validateConfig } from '@outpost/common';
import { agentConfigSchema } from '../src/index.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/config/${name}`, import.meta.url));

describe('agentConfigSchema', () => {
  it('fills defaults: data dir, host name, auto heartbeats with a 3 s ack timeout, intervals from the core', () => {
    const c = validateConfig(agentConfigSchema, { coreUrl: 'http://127.0.0.1:8080' }, { file: '<test>' });
    expect(c).toMatchObject({
      coreUrl: ['http://127.0.0.1:8080'],
      dataDir: './var/agent',
      name: hostname(),
      heartbeat: { via: 'auto', udpAckTimeout: 3_000, udpAttempts: 2, udpRetryEvery: 10 },
      retry: { base: 1_000, cap: 30_000 },
      httpTimeout: 10_000,
    });
    expect(c.heartbeat.interval).toBeUndefined();
    expect(c.configPollInterval).toBeUndefined();
    expect(c.datagramPort).toBeUndefined();
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('takes several core URLs as a list (one URL is a list of one)', () => {
    const c = validateConfig(agentConfigSchema, { coreUrl: ['http://core-a:8080/', 'http://core-b:8080'] }, { file: '<test>' });
    expect(c.coreUrl).toEqual(['http://core-a:8080', 'http://core-b:8080']);
    expect(() => validateConfig(agentConfigSchema, { coreUrl: [] }, { file: '<test>' })).toThrow(/coreUrl/);
  });

  it('parses durations', () => {
    const c = validateConfig(agentConfigSchema, { coreUrl: 'http://h', heartbeat: { interval: '1m30s', udpAckTimeout: 500 }, configPollInterval: '2h' }, { file: '<test>' });
    expect(c.heartbeat.interval).toBe(90_000);
    expect(c.heartbeat.udpAckTimeout).toBe(500);
    expect(c.configPollInterval).toBe(7_200_000);
  });

  it.each([
    ['unknown-key.json', ['(top level)']],
    ['bad-values.json', ['coreUrl', 'heartbeat.via', 'heartbeat.udpAckTimeout']],
    ['two-tokens.json', ['enrollTokenFile']],
    ['no-core-url.json', ['coreUrl']],
  ])('rejects %s naming every bad key', async (name, paths) => {
    const err = await loadConfig(agentConfigSchema, { file: fixture(name) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'COMMON_CONFIG_INVALID' });
    const problems = (err as { details: { problems: Array<{ path: string }> } }).details.problems.map((p) => p.path);
    expect(problems.sort()).toEqual([...paths].sort());
  });
});
