import { createSocket, type Socket } from 'node:dgram';
import { agentTaskKey, datagramKey, eventKey, parseCredential, silentLogger, taskBearerSecret, validateConfig, withMac } from '@outpost/common';
import { coreConfigSchema, createCore, type Core } from '@outpost/core';
import { grantFor, removeDir, tempDir } from '@outpost/testing';
import { createTaskServer, taskServerConfigSchema, type TaskServer, type TaskServerConfigInput } from '../src/index.js';

export interface Env {
  core: Core;
  ts: TaskServer;
  dirs: string[];
  admin<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  close(): Promise<void>;
}

export async function startCore(dir: string, port = 0): Promise<Core> {
  const core = createCore(validateConfig(coreConfigSchema, { dataDir: dir, http: { port }, datagram: { host: '127.0.0.1', port: 0 } }, { file: 'test' }), {
    logger: silentLogger(),
  });
  await core.start();
  return core;
}

/** `create`: the built package's factory where worker processes must find their compiled entry point. */
export async function startEnv(ts: Partial<TaskServerConfigInput> = {}, create: typeof createTaskServer = createTaskServer): Promise<Env> {
  const dirs = [await tempDir('outpost-ts-core-'), await tempDir('outpost-ts-')];
  const core = await startCore(dirs[0]!);
  const token = await core.createEnrollmentToken({ for: 'site-server', grant: grantFor({ task: {} }) });
  const server = create(
    validateConfig(
      taskServerConfigSchema,
      { coreUrl: core.url, dataDir: dirs[1], name: 'ts-test', enrollToken: token.token, http: { host: '127.0.0.1', port: 0 }, coreTickle: { host: '127.0.0.1', port: 0 }, ...ts },
      { file: 'test' },
    ),
    { logger: silentLogger() },
  );
  await server.start();
  const env: Env = {
    core,
    ts: server,
    dirs,
    async admin<T>(method: string, path: string, body?: unknown) {
      const res = await fetch(`${env.core.url}/api/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${env.core.adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
    },
    async close() {
      await server.stop();
      await env.core.stop();
      for (const d of dirs) await removeDir(d);
    },
  };
  return env;
}

export interface FakeAgent {
  id: string;
  key: Buffer;
  bearer: string;
  udp: Socket;
  port: number;
  tickles: Buffer[];
  call<T = Record<string, unknown>>(method: string, path: string, body?: unknown, bearer?: string): Promise<{ status: number; body: T }>;
  close(): Promise<void>;
}

/** Enrolls an agent at the core and gives it a UDP socket for tickles. */
export async function fakeAgent(env: Env, name: string): Promise<FakeAgent> {
  const t = await env.core.createEnrollmentToken({ for: 'agent' });
  const res = await fetch(`${env.core.url}/api/v1/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: t.token, name }) });
  const a = (await res.json()) as { id: string; credential: string };
  await env.core.registry.settled();
  const dk = datagramKey(parseCredential(a.credential)!.secret);
  const key = agentTaskKey(dk, env.ts.id);
  const ek = eventKey(dk);
  const udp = createSocket('udp4');
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
  const tickles: Buffer[] = [];
  udp.on('message', (m) => tickles.push(m));
  const bearer = `${a.id}.${taskBearerSecret(key)}`;
  return {
    id: a.id,
    key,
    bearer,
    udp,
    port: udp.address().port,
    tickles,
    async call<T>(method: string, path: string, body?: unknown, b = bearer) {
      // As a real agent: every status event carries its MAC (one given is kept).
      if (path === '/agent/events' && Array.isArray((body as { events?: unknown })?.events)) {
        body = { events: (body as { events: object[] }).events.map((e) => ('mac' in e ? e : withMac(ek, e))) };
      }
      const r = await fetch(`${env.ts.url}/api/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${b}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await r.text();
      return { status: r.status, body: (text ? JSON.parse(text) : undefined) as T };
    },
    close: () => new Promise<void>((r) => udp.close(() => r())),
  };
}

export async function defineJob(env: Env): Promise<void> {
  await env.admin('POST', '/tasks', { name: 'hello', kind: 'command', program: 'echo', args: ['hi'] });
  await env.admin('POST', '/jobs', { name: 'job1', steps: [{ task: 'hello' }] });
}

export const event = (run: string, agent: string, step: number, state: string, extra: Record<string, unknown> = {}) => ({
  id: `${run}:${agent}:${step}:0:${state}`,
  run,
  agent,
  step,
  attempt: 0,
  state,
  at: Date.now(),
  ...extra,
});
