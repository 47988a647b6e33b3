// The CLI given several core URLs (OUTPOST_URL=a,b or --url repeated) against a real core:
// a dead core first and one whose store is down (503) are passed over, and a failure at
// every URL names each.
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { main } from '@outpost/appliance';
import { silentLogger, validateConfig } from '@outpost/common';
import { coreConfigSchema, createCore, type Core } from '@outpost/core';
import { freePort, removeDir, tempDir } from '@outpost/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordingIo } from '../io.js';

let core: Core;
let dir: string;
let dead: string;
let storeDown: Server;
let storeDownUrl: string;
let storeDownCalls = 0;

beforeAll(async () => {
  dir = await tempDir('outpost-cli-failover-');
  core = createCore(validateConfig(coreConfigSchema, { dataDir: dir, http: { host: '127.0.0.1', port: 0 }, datagram: { host: '127.0.0.1', port: 0 } }, { file: 'test' }), { logger: silentLogger() });
  await core.start();
  dead = `http://127.0.0.1:${await freePort()}`;
  storeDown = createServer((req, res) => {
    storeDownCalls++;
    req.resume();
    res.writeHead(503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'CORE_STORE_UNAVAILABLE', message: 'the store cannot be reached' } }));
  }).listen(0, '127.0.0.1');
  await once(storeDown, 'listening');
  const a = storeDown.address();
  storeDownUrl = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  expect((await cli(['site', 'add', 'hq', '--subnet', '10.1.0.0/16'], { OUTPOST_URL: core.url })).code).toBe(0);
});
afterAll(async () => {
  storeDown.closeAllConnections();
  storeDown.close();
  await core.stop();
  await removeDir(dir);
});

async function cli(argv: string[], env: Record<string, string>): Promise<{ code: number; out: string; err: string }> {
  const io = recordingIo(dir, { OUTPOST_TOKEN: core.adminToken, ...env });
  const code = await main(argv, io);
  return { code, out: io.stdout.join('\n'), err: io.stderr.join('\n') };
}

describe('the CLI with several core URLs', () => {
  it('OUTPOST_URL="<dead>,<store down>,<live>" lists the sites from the live core', async () => {
    const before = storeDownCalls;
    const r = await cli(['site', 'list'], { OUTPOST_URL: `${dead},${storeDownUrl},${core.url}` });
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('hq');
    expect(r.out).toContain('10.1.0.0/16');
    expect(storeDownCalls).toBe(before + 1);
  });

  it('--url repeated does the same', async () => {
    const r = await cli(['site', 'list', '--json', '--url', dead, '--url', core.url], {});
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ items: [{ name: 'hq' }] });
  });

  it('names each URL and why when no core answers', async () => {
    const r = await cli(['site', 'list'], { OUTPOST_URL: `${dead},${storeDownUrl}` });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error APPLIANCE_CORE_UNREACHABLE: cannot reach the core at /);
    expect(r.err).toContain(`${dead}: ECONNREFUSED`);
    expect(r.err).toContain(`${storeDownUrl}: answered 503 CORE_STORE_UNAVAILABLE`);
  });
});
