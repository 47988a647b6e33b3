import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILT_IN_ROLES } from '../../src/admins/permissions.js';
import type { RouteEntry } from '../../src/admins/route-table.js';
import { cleanup, startCore, type TestCore } from './harness.js';

/*
 * The permission matrix, generated from the core's own route table: every route that a
 * started core mounts, called by an administrator of every built-in role (and by nobody).
 * A route added tomorrow is in the table, so it is in this test; it cannot skip it.
 */

const ROLES = Object.keys(BUILT_IN_ROLES);
let tc: TestCore;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  tc = await startCore();
  for (const role of ROLES) {
    const r = await tc.call('POST', '/admins', { body: { name: `m-${role}`, roles: [role] } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    tokens[role] = r.body.token.token;
  }
});
afterAll(cleanup);

/** A concrete path for a route template: every parameter a name nobody has. */
const concrete = (path: string): string => path.replace(/:\w+/g, 'zz-nobody').replace(/\*\w+/g, 'zz/file');

async function call(route: RouteEntry, token: string | undefined): Promise<{ status: number; code?: string; permission?: string }> {
  const ac = new AbortController();
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const hasBody = !['GET', 'DELETE'].includes(route.method);
  if (hasBody) headers['content-type'] = 'application/json';
  const res = await fetch(`${tc.url}${concrete(route.path)}`, { method: route.method, headers, ...(hasBody ? { body: '{}' } : {}), signal: ac.signal, redirect: 'manual' });
  const type = res.headers.get('content-type') ?? '';
  if (type.includes('event-stream')) {
    ac.abort();
    return { status: res.status };
  }
  const text = await res.text();
  let body: { error?: { code?: string; details?: { permission?: string } } } = {};
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    // not JSON (a redirect, a PEM, a file): only the status matters
  }
  return { status: res.status, ...(body.error?.code ? { code: body.error.code } : {}), ...(body.error?.details?.permission ? { permission: body.error.details.permission } : {}) };
}

describe('permission matrix (every route x every built-in role)', () => {
  it('refuses every route that needs a credential to a caller without one (401)', async () => {
    const wrong: string[] = [];
    for (const route of tc.core.routes()) {
      if (route.declares?.public) continue;
      const r = await call(route, undefined);
      if (r.status !== 401) wrong.push(`${route.method} ${route.path}: ${r.status}`);
    }
    expect(wrong).toEqual([]);
  });

  for (const role of ROLES) {
    it(`${role}: a route is refused with 403 CORE_FORBIDDEN naming its permission exactly when the role lacks it`, async () => {
      const perms = new Set<string>(BUILT_IN_ROLES[role]!.permissions);
      const wrong: string[] = [];
      let allowed = 0;
      let refused = 0;
      for (const route of tc.core.routes()) {
        const d = route.declares;
        if (!d || d.public) continue;
        // Sign-out would end nothing here (a token has no session) but keeps the token: fine to call.
        const r = await call(route, tokens[role]);
        const mayCall = d.anyAdmin === true || d.anyPrincipal === true || (d.permission !== undefined && perms.has(d.permission));
        const label = `${route.method} ${route.path} -> ${r.status} ${r.code ?? ''}`;
        if (mayCall) {
          allowed++;
          if (r.status === 401 || r.status === 403) wrong.push(`${label} (should be allowed)`);
        } else {
          refused++;
          if (r.status !== 403) wrong.push(`${label} (should be 403)`);
          // Routes for machine principals only refuse administrators with their own code.
          else if (d.permission !== undefined && (r.code !== 'CORE_FORBIDDEN' || r.permission !== d.permission)) wrong.push(`${label} (should name ${d.permission})`);
        }
      }
      expect(wrong).toEqual([]);
      // The matrix is not vacuous for any role.
      expect(allowed).toBeGreaterThan(10);
      if (role !== 'owner') expect(refused).toBeGreaterThan(5);
    });
  }
});
