import { agentTaskKey, datagramKey, eventKey, parseCredential, silentLogger, validateConfig, withMac } from '@outpost/common';
import { grantFor, removeDir, tempDir } from '@outpost/testing';
import { coreConfigSchema, createCore, type Core } from '../../src/index.js';

export interface Harness {
  core: Core;
  dir: string;
  admin<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  as<T = Record<string, unknown>>(bearer: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  close(): Promise<void>;
}

/** A core on port 0 with its own data dir; `tickInterval` short for expiry tests. */
export async function startCore(tasks: Record<string, unknown> = {}): Promise<Harness> {
  const dir = await tempDir('outpost-core-tasks-');
  const config = validateConfig(
    coreConfigSchema,
    { dataDir: dir, http: { port: 0 }, datagram: { host: '127.0.0.1', port: 0 }, tasks: { tickInterval: 50, ...tasks } },
    { file: 'test' },
  );
  const core = createCore(config, { logger: silentLogger() });
  await core.start();
  const as = async <T>(bearer: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${core.url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${bearer}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  };
  return {
    core,
    dir,
    as,
    admin: (method, path, body) => as(core.adminToken, method, path, body),
    async close() {
      await core.stop();
      await removeDir(dir);
    },
  };
}

/** Enrolls a task server and `n` agents; returns their credentials and task keys. */
export async function enrollFleet(h: Harness, n: number): Promise<{ ts: { id: string; bearer: string }; agents: Array<{ id: string; bearer: string; taskKey: Buffer; eventKey: Buffer }> }> {
  const t1 = await h.core.createEnrollmentToken({ for: 'site-server', grant: grantFor({ task: { url: 'http://127.0.0.1:1' } }) });
  const ssRes = await fetch(`${h.core.url}/api/v1/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token: t1.token, name: 'ts1', services: { task: { url: 'http://127.0.0.1:1' } } }),
  });
  const ss = (await ssRes.json()) as { id: string; credential: string };
  const t2 = await h.core.createEnrollmentToken({ for: 'agent', uses: n });
  const agents: Array<{ id: string; bearer: string; taskKey: Buffer; eventKey: Buffer }> = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${h.core.url}/api/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: t2.token, name: `pc-${i}` }),
    });
    const a = (await res.json()) as { id: string; credential: string };
    const dk = datagramKey(parseCredential(a.credential)!.secret);
    agents.push({ id: a.id, bearer: a.credential, taskKey: agentTaskKey(dk, ss.id), eventKey: eventKey(dk) });
  }
  await h.core.registry.settled();
  return { ts: { id: ss.id, bearer: ss.credential }, agents };
}

/** Adds each agent's MAC to its events, as the agent does (hop marks, the task server's own, stay without). */
export function macAll<E extends { agent: string; step: number; state: string }>(agents: Array<{ id: string; eventKey: Buffer }>, events: E[]): E[] {
  return events.map((e) => {
    const a = agents.find((x) => x.id === e.agent);
    return !a || (e.step === -1 && (e.state === 'tickled' || e.state === 'fetched')) ? e : withMac(a.eventKey, e);
  });
}
