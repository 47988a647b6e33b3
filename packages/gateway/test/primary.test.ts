import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { removeDir, tempDir } from '@outpost/testing';
import { WORKER_OPENSSL_CONFIG, rawWorkers, workerExecArgv } from '../src/primary.js';

const openssl = `--openssl-config=${WORKER_OPENSSL_CONFIG}`;

describe('worker flags', () => {
  it('gives workers the V8 flags and the gateway’s OpenSSL config after the primary’s own flags', () => {
    expect(workerExecArgv(['--enable-source-maps'], {})).toEqual(['--enable-source-maps', '--max-semi-space-size=1', '--max-old-space-size=1536', openssl]);
  });

  it('leaves out what the operator already gave: flags (either spelling), NODE_OPTIONS, OPENSSL_CONF', () => {
    expect(workerExecArgv(['--max_semi_space_size=4'], {})).toEqual(['--max_semi_space_size=4', '--max-old-space-size=1536', openssl]);
    expect(workerExecArgv([], { NODE_OPTIONS: '--max-old-space-size=512 --openssl-config=/etc/ssl/x.cnf' })).toEqual(['--max-semi-space-size=1']);
    expect(workerExecArgv(['--openssl-shared-config'], {})).toEqual(['--openssl-shared-config', '--max-semi-space-size=1', '--max-old-space-size=1536']);
    expect(workerExecArgv([], { OPENSSL_CONF: '/etc/ssl/fips.cnf' })).toEqual(['--max-semi-space-size=1', '--max-old-space-size=1536']);
  });
});

describe('rawWorkers', () => {
  it('reads gateway.workers from the file, the environment winning; 1 when absent, unreadable or not an integer > 1', async () => {
    const dir = await tempDir('outpost-gw-workers-');
    try {
      const yaml = join(dir, 'gw.yaml');
      await writeFile(yaml, 'gateway:\n  workers: 4\n');
      expect(await rawWorkers(yaml, {})).toBe(4);
      expect(await rawWorkers(yaml, { OUTPOST_GATEWAY__WORKERS: '6' })).toBe(6);
      expect(await rawWorkers(yaml, { OUTPOST_GATEWAY__WORKERS: '2.5' })).toBe(1);
      const json = join(dir, 'gw.json');
      await writeFile(json, JSON.stringify({ gateway: { listen: { port: 0 } } }));
      expect(await rawWorkers(json, {})).toBe(1);
      expect(await rawWorkers(join(dir, 'missing.yaml'), {})).toBe(1);
    } finally {
      await removeDir(dir);
    }
  });
});
