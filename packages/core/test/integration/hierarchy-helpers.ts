import { request } from 'node:https';
import { openDatabase } from '@outpost/common';
import { tempDir } from '@outpost/testing';
import { expect } from 'vitest';
import WebSocket from 'ws';
import { Authority } from '../../src/ca/authority.js';
import { issueLinkCert } from '../../src/hierarchy/tls.js';
import { decodeEntry } from '../../src/journal-entry.js';
import { startCore, type TestClock, type TestCore } from './harness.js';

/** Short link intervals: a silent link is degraded after 0.9 s, failed after 2 s. */
export const FAST = { degradedAfter: 900, failedAfter: 2_000, summaryInterval: 200 };

/** The wall clock, for tests where link states follow real silence. */
export const realClock = (): TestClock => ({ now: () => Date.now(), advance: () => undefined });

/** A parent with a link listener on 127.0.0.1 and a child (not joined yet), a join token and the listener's URL. */
export async function parentAndChild(opts: { clock?: () => TestClock; hierarchy?: Record<string, unknown>; install?: { dir: string } } = {}): Promise<{ parent: TestCore; child: TestCore; token: string; url: string }> {
  const h = { ...FAST, ...opts.hierarchy };
  const more = opts.install ? { install: opts.install } : {};
  const parent = await startCore({ ...(opts.clock ? { clock: opts.clock() } : {}), config: { hierarchy: { name: 'hq', listen: { host: '127.0.0.1', port: 0 }, ...h }, ...more } });
  const child = await startCore({ ...(opts.clock ? { clock: opts.clock() } : {}), config: { hierarchy: { name: 'emea', ...h }, ...more } });
  const t = await parent.call('POST', '/hierarchy/tokens', { body: {} });
  expect(t.status).toBe(201);
  const url = (await parent.call('GET', '/hierarchy')).body.listener as string;
  expect(t.body.joinCommand).toBe(`outpost hierarchy join ${url} --token ${t.body.token}`);
  return { parent, child, token: t.body.token, url };
}

export async function join(child: TestCore, url: string, token: string): Promise<void> {
  const j = await child.call('POST', '/hierarchy/join', { body: { url, token } });
  expect(j.status, JSON.stringify(j.body)).toBe(200);
}

/** A hostile child: joins with a real token and its own CA, then speaks the protocol itself. */
export async function rogueChild(parent: TestCore, url: string): Promise<{ cert: string; key: string; ca: string; id: string; dir: string }> {
  const dir = await tempDir('outpost-rogue-');
  const { authority } = await Authority.open(dir, 86_400_000);
  const link = await issueLinkCert(authority);
  const token = (await parent.call('POST', '/hierarchy/tokens', { body: {} })).body.token as string;
  const [id, secret] = token.split('.');
  const parentCa = (await parent.call('GET', '/ca/certificate')).body as string;
  const r = await post(url, '/join', { token: `${id}.${secret}`, id: authority.coreId, name: 'rogue', caPem: authority.certPem, certPem: link.certPem }, parentCa);
  expect(r.status).toBe(200);
  return { cert: link.certPem, key: link.keyPem, ca: parentCa, id: authority.coreId, dir };
}

export function post(url: string, path: string, body: unknown, ca: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, url), { method: 'POST', ca, checkServerIdentity: () => undefined, headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString() || 'null') }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** Opens a link WebSocket as a raw client; every message it receives is kept, parsed. */
export function connect(url: string, tls: { cert?: string; key?: string; ca: string }): Promise<{ ws: WebSocket; messages: any[] } | { refused: number | string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(new URL('/link', url.replace(/^https/, 'wss')), { ...tls, checkServerIdentity: () => undefined } as object);
    const messages: any[] = [];
    ws.on('message', (d: Buffer) => messages.push(JSON.parse(d.toString())));
    ws.on('open', () => resolve({ ws, messages }));
    ws.on('unexpected-response', (_q, res) => resolve({ refused: res.statusCode ?? 0 }));
    ws.on('error', (err) => resolve({ refused: err.message }));
  });
}

/**
 * Every value a core's journal (level) recorded for each key of the given sublevels, in seq
 * order: what was written, and how often. Read from the data dir of a stopped core.
 */
export async function journalWrites(dir: string, sublevels: readonly string[]): Promise<Map<string, Array<string | undefined>>> {
  const db = await openDatabase(dir);
  const out = new Map<string, Array<string | undefined>>();
  const prefixes = sublevels.map((s) => `!${s}!`);
  try {
    for await (const [, text] of db.sublevel<string, string>('journal', { valueEncoding: 'utf8' }).iterator()) {
      const e = decodeEntry(text);
      if (!e) throw new Error('an undecodable journal entry');
      for (const op of e.ops) {
        if (!prefixes.some((p) => op.key.startsWith(p))) continue;
        const list = out.get(op.key) ?? [];
        list.push(op.value);
        out.set(op.key, list);
      }
    }
  } finally {
    await db.close();
  }
  return out;
}

/** A command task named `name` (echoes its name). */
export const task = (name: string) => ({ name, kind: 'command', program: '/bin/echo', args: [name] });

export type Call = (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }>;

/** The names of a core's tasks. */
export async function taskNames(call: Call): Promise<string[]> {
  const r = await call('GET', '/tasks');
  if (r.status !== 200) throw new Error(`GET /tasks: ${r.status}`);
  return (r.body.items as Array<{ name: string }>).map((t) => t.name).sort();
}
