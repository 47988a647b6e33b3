import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { validateConfig } from '@outpost/common';
import { grantFor } from '@outpost/testing';
import { coreConfigSchema, createCore, type Core } from '../../src/index.js';

export const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

export async function startCore(dir: string, packages: Record<string, unknown> = {}): Promise<Core> {
  const core = createCore(
    validateConfig(
      coreConfigSchema,
      { dataDir: join(dir, 'core'), http: { host: '127.0.0.1', port: 0 }, datagram: { host: '127.0.0.1', port: 0 }, packages },
      { file: '<test>' },
    ),
  );
  await core.start();
  return core;
}

/** A loosely typed JSON document for assertions (no `any`). */
export interface Doc {
  readonly [k: string]: Doc;
}
export const list = (d: Doc): Doc[] => d as unknown as Doc[];

/** A tiny admin client over fetch. */
export function api(core: Core, bearer = core.adminToken) {
  return async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: Doc; headers: Headers }> => {
    const isBytes = Buffer.isBuffer(body);
    const res = await fetch(`${core.url}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${bearer}`,
        ...(body === undefined ? {} : { 'content-type': isBytes ? 'application/octet-stream' : 'application/json' }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: isBytes ? (body as Buffer) : JSON.stringify(body) }),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = text;
    }
    return { status: res.status, json: json as Doc, headers: res.headers };
  };
}

export async function enrollPackageServer(core: Core, name: string, constrained: boolean, address: string, url = `http://127.0.0.1:1/${name}`): Promise<{ id: string; credential: string }> {
  const { token } = await core.createEnrollmentToken({ for: 'site-server', grant: grantFor({ package: { constrained, url } }, { address }) });
  const res = await fetch(`${core.url}/api/v1/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token, name, address, services: { package: { constrained, url } } }),
  });
  const j = (await res.json()) as { id: string; credential: string };
  return { id: j.id, credential: j.credential };
}
