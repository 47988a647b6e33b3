import { describe, expect, it } from 'vitest';
import { WORKER_OPENSSL_CONFIG, workerExecArgv } from '../src/primary.js';

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
