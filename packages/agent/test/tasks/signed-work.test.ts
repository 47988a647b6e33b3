import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { access } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { cancelBody, eventKey, exportWorkKey, runBody, runDigest, signWork, silentLogger, verifyEventMac, workTicket, workTicketKey } from '@outpost/common';
import { removeDir, tempDir, waitFor } from '@outpost/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { createTaskAgent, type TaskAgent } from '../../src/tasks/task-agent.js';
import { agentTasksConfigSchema } from '../../src/tasks/task-config.js';

/**
 * The agent's side of signed work, against a hostile task server (the test plays it, and
 * the core that signs): only runs the core signed, addressed to this agent, unexpired
 * and not done before, are journaled and run; the rest is refused, counted and reported.
 */
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const AGENT = 'ag_signed';
const dk = randomBytes(32);

let dir: string | undefined;
let server: Server | undefined;
let agent: TaskAgent | undefined;
afterEach(async () => {
  await agent?.stop();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  await removeDir(dir);
  agent = undefined;
  server = undefined;
  dir = undefined;
});

const exists = (f: string): Promise<boolean> => access(f).then(() => true, () => false);

interface Ev {
  run: string;
  step: number;
  state: string;
  error?: string;
  mac?: string;
}

/** A run as the core signs it for an agent (`as`: whose ticket). */
function signed(id: string, script: string, opts: { expiresAt?: number; as?: Buffer; agent?: string } = {}) {
  const steps = [{ name: 's', task: { kind: 'script' as const, script, timeoutMs: 10_000 }, successCodes: [0], onFailure: 'stop' as const, retries: 0 }];
  const r = { id, job: 'j', steps, expiresAt: opts.expiresAt ?? Date.now() + 60_000, nonce: randomBytes(16).toString('base64url') };
  const body = runBody({ run: r.id, job: r.job, steps: r.steps, expiresAt: r.expiresAt, nonce: r.nonce })!;
  return { ...r, sig: signWork(privateKey, body), ticket: workTicket(workTicketKey(opts.as ?? dk), runDigest(body), opts.agent ?? AGENT), cancelled: false };
}

async function start(): Promise<{ work: unknown[]; events: Ev[] }> {
  dir = await tempDir('outpost-signed-agent-');
  const state = { work: [] as unknown[], events: [] as Ev[] };
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (req.url?.startsWith('/api/v1/agent/work')) {
        res.end(JSON.stringify({ runs: state.work, pollAfterMs: 100 }));
        return;
      }
      const events = (JSON.parse(Buffer.concat(chunks).toString()) as { events: Ev[] }).events;
      state.events.push(...events);
      res.end(JSON.stringify({ accepted: events.length, stored: events.length }));
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  agent = createTaskAgent(agentTasksConfigSchema.parse({ tickleHost: '127.0.0.1', ticklePort: 0, websocket: 'never', pollInterval: '100ms' }), {
    log: silentLogger(),
    dataDir: dir,
    identity: () => ({ id: AGENT, datagramKey: dk }),
    taskServer: () => ({ id: 'ss_t', url }),
    workKey: () => exportWorkKey(publicKey),
  });
  await agent.start();
  return state;
}

describe('signed work on the agent', () => {
  it('runs a signed run and refuses unsigned, tampered, misaddressed, expired, replayed and forged-cancel work, reporting each', async () => {
    const s = await start();
    const owned = (k: string): string => join(dir!, `owned-${k}`);
    const good = signed('run_good', `touch ${join(dir!, 'ran-good')}`);
    const { sig: _sig, ...unsigned } = signed('run_unsigned', `touch ${owned('unsigned')}`);
    const tampered = { ...signed('run_tampered', 'echo fine'), steps: signed('x', `touch ${owned('tampered')}`).steps };
    const misaddressed = signed('run_other', `touch ${owned('other')}`, { as: randomBytes(32), agent: 'ag_other' });
    const expired = signed('run_expired', `touch ${owned('expired')}`, { expiresAt: Date.now() - 1 });
    const forgedCancel = { ...signed('run_cancel', 'true'), cancelled: true, cancelSig: signWork(generateKeyPairSync('ed25519').privateKey, cancelBody('run_cancel')) };
    s.work = [unsigned, tampered, misaddressed, expired, forgedCancel, good, 'garbage', { id: 7 }];

    const refusedOf = (run: string): Ev | undefined => s.events.find((e) => e.run === run && e.step === -1 && e.state === 'failed');
    await waitFor(() => ['run_unsigned', 'run_tampered', 'run_other', 'run_expired', 'run_cancel'].every(refusedOf) && s.events.some((e) => e.run === 'run_good' && e.step === -1 && e.state === 'succeeded'), {
      timeoutMs: 20_000,
      what: 'refusals reported and the good run finished',
    });
    expect(await exists(join(dir!, 'ran-good'))).toBe(true);
    for (const k of ['unsigned', 'tampered', 'other', 'expired']) expect(await exists(owned(k)), k).toBe(false);
    expect(refusedOf('run_unsigned')!.error).toBe('refused: unsigned');
    expect(refusedOf('run_tampered')!.error).toBe('refused: bad-signature');
    expect(refusedOf('run_other')!.error).toBe('refused: bad-ticket');
    expect(refusedOf('run_expired')!.error).toBe('refused: expired');
    expect(refusedOf('run_cancel')!.error).toBe('refused: bad-signature');
    // Every event carries the agent's MAC, the core's check.
    expect(s.events.every((e) => verifyEventMac(eventKey(dk), e))).toBe(true);
    expect(agent!.stats.runsStarted).toBe(1);

    // The finished run offered again: a replay, refused and reported, not run twice.
    s.work = [good];
    await waitFor(() => (agent!.stats.refused.replayed ?? 0) > 0 && s.events.some((e) => e.run === 'run_good' && e.error === 'refused: replayed'), { timeoutMs: 20_000, what: 'replay refused' });
    expect(agent!.stats.runsStarted).toBe(1);
    // Counted on every fetch that brings them (reported once).
    const r = agent!.stats.refused;
    for (const k of ['unsigned', 'bad-signature', 'bad-ticket', 'expired', 'replayed'] as const) expect(r[k], k).toBeGreaterThan(0);
    expect(s.events.filter((e) => e.run === 'run_tampered').length).toBe(1);
  });

  it('keeps running a run a forged cancel names, and stops it on the core\'s signed cancel', async () => {
    const s = await start();
    const gate = join(dir!, 'never');
    const run = signed('run_long', `while [ ! -e '${gate}' ]; do sleep 0.05; done`);
    s.work = [run];
    await waitFor(() => s.events.some((e) => e.run === 'run_long' && e.state === 'running'), { timeoutMs: 20_000, what: 'run started' });
    s.work = [{ ...run, cancelled: true, cancelSig: signWork(generateKeyPairSync('ed25519').privateKey, cancelBody('run_long')) }];
    await waitFor(() => (agent!.stats.refused['bad-signature'] ?? 0) > 0, { timeoutMs: 20_000, what: 'forged cancel refused' });
    // Not reported as the run's failure: a relay must not end a run's record.
    expect(s.events.some((e) => e.run === 'run_long' && e.step === -1)).toBe(false);
    s.work = [{ ...run, cancelled: true, cancelSig: signWork(privateKey, cancelBody('run_long')) }];
    await waitFor(() => s.events.some((e) => e.run === 'run_long' && e.step === -1 && e.state === 'cancelled'), { timeoutMs: 20_000, what: 'signed cancel obeyed' });
  });
});
