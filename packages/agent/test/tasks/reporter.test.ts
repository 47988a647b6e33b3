import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '@outpost/common';
import { removeDir, tempDir, waitFor } from '@outpost/testing';
import { createCoreClient } from '../../src/core-client.js';
import { JournalStore, type RunJournal } from '../../src/tasks/journal.js';
import { Reporter } from '../../src/tasks/reporter.js';
import { makeEvent, type StatusEvent } from '../../src/tasks/types.js';

// The reporter against a real HTTP server standing in for a task server's /agent/events:
// events reported while a batch is in flight must go out when it ends, not wait for the
// next run (a lost kick once left a finished run unreported on the core for good).
let dir: string;
let server: Server;
let url: string;
let hold: Array<() => void> = [];
let holdNext = 0;
let failNext = 0;
const received: string[][] = [];

beforeEach(async () => {
  dir = await tempDir('outpost-reporter-');
  received.length = 0;
  hold = [];
  holdNext = 0;
  failNext = 0;
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const answer = (): void => {
        if (failNext > 0) {
          failNext--;
          res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'X', message: 'down' } }));
          return;
        }
        received.push((JSON.parse(body) as { events: StatusEvent[] }).events.map((e) => `${e.step}:${e.state}`));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"accepted":1}');
      };
      if (holdNext > 0) {
        holdNext--;
        hold.push(answer);
      } else answer();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterEach(async () => {
  await new Promise((r) => server.close(r));
  await removeDir(dir);
});

function setup(): { reporter: Reporter; journal: RunJournal; journals: Map<string, RunJournal>; push: (step: number, state: StatusEvent['state']) => void } {
  const store = new JournalStore(dir);
  const journal: RunJournal = { version: 1, run: { id: 'run_1', job: 'j', steps: [], expiresAt: Date.now() + 60_000, cancelled: false }, results: [], outbox: [] };
  const journals = new Map([[journal.run.id, journal]]);
  const client = createCoreClient({ coreUrl: url, timeoutMs: 10_000 });
  const reporter = new Reporter(journals, store, () => ({ client, bearer: 'b' }), silentLogger(), () => (e) => ({ ...e, mac: 'm' }));
  const push = (step: number, state: StatusEvent['state']): void => {
    journal.outbox.push(makeEvent({ run: 'run_1', agent: 'ag_1', step, attempt: 0, state, at: Date.now() }));
  };
  return { reporter, journal, journals, push };
}

describe('Reporter', () => {
  it('sends the events reported while a batch was in flight as soon as that batch is acknowledged', async () => {
    const { reporter, journal, journals, push } = setup();
    await journalsDir();
    holdNext = 1;
    push(0, 'running');
    reporter.kick();
    await waitFor(() => hold.length === 1, { timeoutMs: 5_000, what: 'the first batch in flight' });
    push(0, 'succeeded');
    journal.final = 'succeeded';
    push(-1, 'succeeded');
    reporter.kick();
    hold.shift()!();
    await waitFor(() => received.length === 2, { timeoutMs: 5_000, what: 'the second batch (no other kick comes)' });
    expect(received).toEqual([['0:running'], ['0:succeeded', '-1:succeeded']]);
    await waitFor(() => journals.size === 0, { timeoutMs: 5_000, what: 'the final run leaving the journals' });
    await reporter.stop();
  });

  it('retries a failed batch by itself, with back-off', async () => {
    const { reporter, journals, push } = setup();
    await journalsDir();
    failNext = 2;
    push(0, 'running');
    reporter.kick();
    await waitFor(() => received.length === 1, { timeoutMs: 10_000, what: 'the batch after two failures' });
    expect(received).toEqual([['0:running']]);
    expect(reporter.stats.failures).toBe(2);
    // The server records the batch before its answer reaches the reporter: the outbox empties on the ack.
    await waitFor(() => journals.get('run_1')?.outbox.length === 0, { timeoutMs: 5_000, what: 'the acknowledged events leaving the outbox' });
    expect(journals.get('run_1')?.outbox).toEqual([]);
    await reporter.stop();
  });
});

async function journalsDir(): Promise<void> {
  await new JournalStore(dir).loadAll();
}
