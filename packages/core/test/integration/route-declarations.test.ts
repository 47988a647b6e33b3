import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, startCore } from './harness.js';

afterEach(cleanup);

describe('route declarations', () => {
  it('every route of a started core declares exactly one guard: a permission, principal kinds, any administrator, any principal, or public', async () => {
    const tc = await startCore();
    const routes = tc.core.routes();
    // Every module mounts routes: an empty or tiny table means the table is not read.
    expect(routes.length).toBeGreaterThan(100);
    const undeclared = routes.filter((r) => r.declarations !== 1).map((r) => `${r.method} ${r.path} (${r.declarations} guards)`);
    expect(undeclared).toEqual([]);
    // Administrators are never let in by kind: only a permission (or anyAdmin) admits them.
    const byAdminKind = routes.filter((r) => r.declares?.kinds?.includes('admin')).map((r) => `${r.method} ${r.path}`);
    expect(byAdminKind).toEqual([]);
    // Only sign-in, enrollment, metrics, the console's static files, SSO and the install link (its script checks the token) are public.
    const pub = routes.filter((r) => r.declares?.public).map((r) => `${r.method} ${r.path}`);
    for (const p of pub) expect(p).toMatch(/^GET \/(console|metrics|install\/(agent\.sh|manifest|files\/:name)$|$)|^(POST|GET) \/api\/v1\/(session|enroll|health)/);
  });
});
