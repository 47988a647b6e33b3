// The OpenSSL config workers start with (openssl.cnf, via primary.ts): a TLS 1.3 server
// in a process started with it sends one session ticket per full handshake, not two,
// and clients still resume with it.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { connect } from 'node:tls';
import { issue, makeCa, type Leaf, type TestCa } from '@outpost/testing/pki';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WORKER_OPENSSL_CONFIG } from '../../src/primary.js';

// An mTLS server (what a worker's listener is, TLS-wise) that answers `ok` and closes.
const SERVER = `
import { createServer } from 'node:tls';
const o = JSON.parse(process.env.TLS_SERVER);
const s = createServer({ ...o, requestCert: true, rejectUnauthorized: true }, (c) => c.end('ok'));
s.listen(0, '127.0.0.1', () => console.log(s.address().port));
`;

let ca: TestCa;
let server: Leaf;
let agent: Leaf;
let child: ChildProcess | undefined;

beforeAll(async () => {
  ca = await makeCa('core_a');
  server = await issue(ca, { id: 'gw', kind: 'site-server', names: ['localhost', '127.0.0.1'] });
  agent = await issue(ca, { id: 'ag_one' });
});

afterEach(() => {
  child?.kill('SIGKILL');
  child = undefined;
});

async function startServer(flags: string[]): Promise<number> {
  const env = { ...process.env, TLS_SERVER: JSON.stringify({ cert: server.cert, key: server.key, ca: ca.pem }) };
  delete env.OPENSSL_CONF;
  child = spawn(process.execPath, [...flags, '--input-type=module', '-e', SERVER], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  return Number(line);
}

/** One connection: the tickets it got and whether it resumed `session`. */
async function connectOnce(port: number, session?: Buffer): Promise<{ tickets: Buffer[]; resumed: boolean }> {
  const tickets: Buffer[] = [];
  const s = connect({ host: '127.0.0.1', port, ca: ca.pem, servername: 'localhost', cert: agent.cert, key: agent.key, ...(session ? { session } : {}) });
  s.on('session', (t: Buffer) => tickets.push(t));
  await once(s, 'secureConnect');
  const resumed = s.isSessionReused();
  s.resume();
  await once(s, 'end');
  s.destroy();
  return { tickets, resumed };
}

describe('worker OpenSSL config', () => {
  it('makes a TLS 1.3 server send one session ticket per full handshake, which resumes', { timeout: 20_000 }, async () => {
    const port = await startServer([`--openssl-config=${WORKER_OPENSSL_CONFIG}`]);
    const first = await connectOnce(port);
    expect(first.tickets).toHaveLength(1);
    // A resumed handshake gets no new ticket (as with two): the client keeps resuming with it.
    for (let i = 0; i < 2; i++) expect((await connectOnce(port, first.tickets[0])).resumed).toBe(true);
  });

  it('differs from OpenSSL’s default of two', { timeout: 20_000 }, async () => {
    const port = await startServer([]);
    expect((await connectOnce(port)).tickets).toHaveLength(2);
  });
});
