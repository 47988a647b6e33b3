import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, startCore, testClock, type TestCore } from './harness.js';

afterEach(cleanup);

const PASSWORD = 'correct horse battery staple';

/** Signs in with a password; the session cookie (name=value) or the error. */
async function signIn(tc: TestCore, name: string, password: string): Promise<{ status: number; cookie?: string; setCookie?: string; body: any }> {
  const r = await tc.call('POST', '/session', { token: null, body: { name, password } });
  const setCookie = r.headers.get('set-cookie') ?? undefined;
  return { status: r.status, body: r.body, ...(setCookie ? { setCookie, cookie: setCookie.split(';')[0] } : {}) };
}

const withCookie = (cookie: string, headers: Record<string, string> = {}) => ({ token: null, headers: { cookie, ...headers } });

async function addWithPassword(tc: TestCore, name: string, roles: string[], extra: Record<string, unknown> = {}) {
  const r = await tc.call('POST', '/admins', { body: { name, roles, password: PASSWORD, ...extra } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  expect(r.body.token).toBeUndefined();
}

describe('passwords and console sessions', () => {
  it('signs in with name and password: an HttpOnly SameSite=Strict cookie (no Secure over plain HTTP) that the API accepts', async () => {
    const tc = await startCore();
    await addWithPassword(tc, 'vera', ['viewer']);
    const s = await signIn(tc, 'vera', PASSWORD);
    expect(s.status).toBe(200);
    expect(s.setCookie).toMatch(/^outpost_session=se_[\w-]+\.[\w-]+; Path=\/; HttpOnly; SameSite=Strict$/);
    const me = await tc.call('GET', '/session', withCookie(s.cookie!));
    expect(me.body).toMatchObject({ name: 'vera', roles: ['viewer'], via: 'session' });
    expect(me.body.permissions).toContain('agents.read');
    expect(me.body.permissions).not.toContain('sites.write');
    // Signed out: the same cookie is refused.
    expect((await tc.call('DELETE', '/session', withCookie(s.cookie!))).status).toBe(204);
    expect((await tc.call('GET', '/session', withCookie(s.cookie!))).status).toBe(401);
  });

  it('marks the session cookie Secure when the core serves HTTPS', async () => {
    const tc = await startCore({ config: { ca: { https: { enabled: true } } } });
    const ca = await readFile(join(tc.dir, 'ca', 'ca.crt'), 'utf8');
    const { request } = await import('node:https');
    const post = (path: string, body: unknown, auth?: string) =>
      new Promise<{ status: number; setCookie: string }>((resolve, reject) => {
        const headers: Record<string, string> = { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${auth}` } : {}) };
        const req = request(`${tc.url}/api/v1${path}`, { method: 'POST', ca, headers }, (res) => {
          res.resume();
          resolve({ status: res.statusCode ?? 0, setCookie: String(res.headers['set-cookie']?.[0] ?? '') });
        });
        req.on('error', reject);
        req.end(JSON.stringify(body));
      });
    expect((await post('/admins', { name: 'vera', roles: ['viewer'], password: PASSWORD }, tc.admin)).status).toBe(201);
    const signIn = await post('/session', { name: 'vera', password: PASSWORD });
    expect(signIn.status).toBe(200);
    expect(signIn.setCookie).toMatch(/^outpost_session=se_[\w-]+\.[\w-]+; Path=\/; HttpOnly; SameSite=Strict; Secure$/);
  });

  it('refuses weak and reused passwords with codes that say which rule', async () => {
    const tc = await startCore();
    for (const [pw, rule] of [['short', /at least 12/], ['aaaaaaaaaaaaaaaa', /different characters|common/], ['password123456', /common/], ['my name is walt!', /name/]] as const) {
      const r = await tc.call('POST', '/admins', { body: { name: 'walt', roles: ['viewer'], password: pw } });
      expect(r.status, pw).toBe(400);
      expect(r.body.error.code).toBe('CORE_PASSWORD_WEAK');
      expect(r.body.error.message).toMatch(rule);
    }
    expect((await tc.call('GET', '/admins/walt')).status).toBe(404);
    await addWithPassword(tc, 'walt', ['viewer']);
    const again = await tc.call('PUT', '/admins/walt/password', { body: { password: PASSWORD } });
    expect(again.status).toBe(400);
    expect(again.body.error.code).toBe('CORE_PASSWORD_REUSED');
  });

  it('locks an account after 5 failures, even against the right password, with a back-off that doubles', async () => {
    const clock = testClock();
    const tc = await startCore({ clock });
    await addWithPassword(tc, 'olga', ['operator']);
    for (let i = 0; i < 5; i++) expect((await signIn(tc, 'olga', `wrong guess ${i}`)).body.error.code).toBe('CORE_SIGN_IN_FAILED');
    const locked = await signIn(tc, 'olga', PASSWORD);
    expect(locked.status).toBe(429);
    expect(locked.body.error.code).toBe('CORE_SIGN_IN_LOCKED');
    expect(locked.body.error.details.retryAfterS).toBe(30);
    expect(locked.cookie).toBeUndefined();
    clock.advance(31_000);
    // One more failure after the lock: the next lock is twice as long.
    await signIn(tc, 'olga', 'wrong again');
    expect((await signIn(tc, 'olga', PASSWORD)).body.error.details.retryAfterS).toBe(60);
    clock.advance(61_000);
    expect((await signIn(tc, 'olga', PASSWORD)).status).toBe(200);
    // Success resets the count.
    expect((await signIn(tc, 'olga', 'one slip')).body.error.code).toBe('CORE_SIGN_IN_FAILED');
    expect((await signIn(tc, 'olga', PASSWORD)).status).toBe(200);
  });

  it('limits password sign-ins per source address over all accounts (spraying one password)', async () => {
    const tc = await startCore({ config: { admins: { lockout: { perAddressPerMinute: 5 } } } });
    for (const n of ['a1', 'a2', 'a3']) await addWithPassword(tc, n, ['viewer']);
    const codes: string[] = [];
    for (let i = 0; i < 6; i++) codes.push((await signIn(tc, ['a1', 'a2', 'a3'][i % 3]!, 'Spring2026!Spring')).body.error.code);
    expect(codes).toEqual([...Array(5).fill('CORE_SIGN_IN_FAILED'), 'CORE_SIGN_IN_LOCKED']);
    // No account is locked by it: each saw two failures.
    expect((await tc.call('GET', '/admins/a1')).body.lockedUntil).toBeUndefined();
  });

  it('answers an unknown name exactly like a wrong password', async () => {
    const tc = await startCore();
    await addWithPassword(tc, 'vera', ['viewer']);
    const wrong = await signIn(tc, 'vera', 'not her password');
    const unknown = await signIn(tc, 'nobody-here', 'not her password');
    expect(unknown.status).toBe(wrong.status);
    expect(unknown.body).toEqual(wrong.body);
  });

  it('ends a session after 30 idle minutes, and after 12 hours however busy', async () => {
    const clock = testClock();
    const tc = await startCore({ clock });
    await addWithPassword(tc, 'vera', ['viewer']);
    const idle = (await signIn(tc, 'vera', PASSWORD)).cookie!;
    clock.advance(29 * 60_000);
    expect((await tc.call('GET', '/session', withCookie(idle))).status).toBe(200);
    clock.advance(30 * 60_000 + 1);
    const ended = await tc.call('GET', '/session', withCookie(idle));
    expect(ended.status).toBe(401);
    expect(ended.body.error.code).toBe('CORE_SESSION_EXPIRED');
    expect(ended.body.error.message).toMatch(/idle/);
    const busy = (await signIn(tc, 'vera', PASSWORD)).cookie!;
    // A request every 20 minutes for 12 hours: never idle, ended at the 12th hour.
    for (let step = 1; step <= 36; step++) {
      clock.advance(20 * 60_000);
      expect((await tc.call('GET', '/agents', withCookie(busy))).status, `after ${step * 20} min`).toBe(step === 36 ? 401 : 200);
    }
  });

  it('signs the bootstrap owner in with its token (it has no password), as owner', async () => {
    const tc = await startCore();
    const r = await tc.call('POST', '/session', { token: null, body: { token: tc.admin } });
    expect(r.status).toBe(200);
    const cookie = r.headers.get('set-cookie')!.split(';')[0]!;
    expect((await tc.call('GET', '/session', withCookie(cookie))).body).toMatchObject({ name: 'admin', roles: ['owner'] });
    const bad = await tc.call('POST', '/session', { token: null, body: { token: 'admin.not-the-secret-at-all' } });
    expect(bad.status).toBe(401);
  });
});

describe('attacks on administrator credentials', () => {
  it('refuses a change made with the session cookie from another origin, and applies nothing', async () => {
    const tc = await startCore();
    await addWithPassword(tc, 'ada', ['admin']);
    const { cookie } = await signIn(tc, 'ada', PASSWORD);
    const forged = await tc.call('POST', '/sites', { ...withCookie(cookie!, { origin: 'https://evil.example' }), body: { name: 'evil', subnets: ['10.66.0.0/16'] } });
    expect(forged.status).toBe(403);
    expect(forged.body.error.code).toBe('CORE_SESSION_ORIGIN');
    expect((await tc.call('GET', '/sites/evil')).status).toBe(404);
    // The same change from the core's own origin is the administrator's.
    const own = await tc.call('POST', '/sites', { ...withCookie(cookie!, { origin: tc.url }), body: { name: 'own', subnets: ['10.67.0.0/16'] } });
    expect(own.status).toBe(201);
  });

  it('refuses an expired API token with a code that says so, and a removed administrator at once', async () => {
    const clock = testClock();
    const tc = await startCore({ clock });
    const r = await tc.call('POST', '/admins', { body: { name: 'tim', roles: ['viewer'], tokenExpires: '1h' } });
    const token = r.body.token.token as string;
    expect((await tc.call('GET', '/agents', { token })).status).toBe(200);
    clock.advance(3_600_001);
    const expired = await tc.call('GET', '/agents', { token });
    expect(expired.status).toBe(401);
    expect(expired.body.error.code).toBe('CORE_CREDENTIAL_EXPIRED');
    const fresh = (await tc.call('POST', '/admins/tim/tokens', { body: { name: 'ci' } })).body.token as string;
    await tc.call('PUT', '/admins/tim/password', { body: { password: PASSWORD } });
    const { cookie } = await signIn(tc, 'tim', PASSWORD);
    expect((await tc.call('GET', '/agents', { token: fresh })).status).toBe(200);
    expect((await tc.call('DELETE', '/admins/tim')).status).toBe(204);
    expect((await tc.call('GET', '/agents', { token: fresh })).status).toBe(401);
    expect((await tc.call('GET', '/agents', withCookie(cookie!))).status).toBe(401);
  });

  it('lets nobody grant more than they hold: roles, custom roles and scopes', async () => {
    const tc = await startCore();
    // A help-desk lead who may manage administrators but holds only a few reads.
    expect((await tc.call('POST', '/roles', { body: { name: 'helpdesk-lead', permissions: ['admins.read', 'admins.write', 'agents.read'] } })).status).toBe(201);
    const lead = (await tc.call('POST', '/admins', { body: { name: 'lee', roles: ['helpdesk-lead'], sites: [] } })).body;
    expect(lead.error?.code).toBe('COMMON_VALIDATION');
    await tc.call('POST', '/sites', { body: { name: 'branch', subnets: ['10.2.0.0/16'] } });
    const lee = (await tc.call('POST', '/admins', { body: { name: 'lee', roles: ['helpdesk-lead'], sites: ['branch'] } })).body.token.token as string;
    const attempts: [string, string, unknown][] = [
      ['POST', '/admins', { name: 'mallory', roles: ['owner'], sites: ['branch'] }],
      ['POST', '/admins', { name: 'mallory', roles: ['viewer'], sites: ['branch'] }],
      ['POST', '/admins', { name: 'mallory', roles: ['helpdesk-lead'] }],
      ['POST', '/roles', { name: 'sneaky', permissions: ['ca.write'] }],
      ['PATCH', '/admins/lee', { roles: ['owner'] }],
      ['PATCH', '/admins/lee', { sites: null }],
    ];
    for (const [method, path, body] of attempts) {
      const r = await tc.call(method, path, { token: lee, body });
      expect(r.status, `${method} ${path} ${JSON.stringify(body)}`).toBe(403);
      expect(r.body.error.code).toBe('CORE_FORBIDDEN');
    }
    expect((await tc.call('GET', '/admins/mallory')).status).toBe(404);
    expect((await tc.call('GET', '/admins/lee')).body).toMatchObject({ roles: ['helpdesk-lead'], sites: ['branch'] });
    expect((await tc.call('GET', '/roles')).body.items.map((r: { name: string }) => r.name)).not.toContain('sneaky');
    // Within what it holds, it may.
    expect((await tc.call('POST', '/admins', { token: lee, body: { name: 'junior', roles: ['helpdesk-lead'], sites: ['branch'] } })).status).toBe(201);
  });

  it('keeps the bootstrap owner out of reach of the API', async () => {
    const tc = await startCore();
    expect((await tc.call('POST', '/admins', { body: { name: 'admin', roles: ['viewer'] } })).body.error.code).toBe('CORE_ADMIN_EXISTS');
    expect((await tc.call('DELETE', '/admins/admin')).body.error.code).toBe('CORE_ADMIN_PROTECTED');
    expect((await tc.call('PATCH', '/admins/admin', { body: { roles: ['viewer'] } })).body.error.code).toBe('CORE_ADMIN_PROTECTED');
    expect((await tc.call('PUT', '/admins/admin/password', { body: { password: PASSWORD } })).body.error.code).toBe('CORE_ADMIN_PROTECTED');
  });

  it('lets an administrator manage its own tokens and password, and nobody else\'s', async () => {
    const tc = await startCore();
    const vera = (await tc.call('POST', '/admins', { body: { name: 'vera', roles: ['viewer'] } })).body.token.token as string;
    await tc.call('POST', '/admins', { body: { name: 'olga', roles: ['operator'] } });
    expect((await tc.call('GET', '/admins/vera', { token: vera })).status).toBe(200);
    expect((await tc.call('POST', '/admins/vera/tokens', { token: vera, body: { name: 'laptop' } })).status).toBe(201);
    expect((await tc.call('GET', '/admins/olga', { token: vera })).status).toBe(403);
    expect((await tc.call('POST', '/admins/olga/tokens', { token: vera, body: { name: 'mine now' } })).status).toBe(403);
    expect((await tc.call('GET', '/admins', { token: vera })).status).toBe(403);
    // Its own password: needs the current one once it has one.
    expect((await tc.call('PUT', '/admins/vera/password', { token: vera, body: { password: PASSWORD } })).status).toBe(204);
    const noCurrent = await tc.call('PUT', '/admins/vera/password', { token: vera, body: { password: 'another good passphrase' } });
    expect(noCurrent.status).toBe(403);
    expect((await tc.call('PUT', '/admins/vera/password', { token: vera, body: { password: 'another good passphrase', current: PASSWORD } })).status).toBe(204);
  });

  it('stores no token secret and no password: only hashes', async () => {
    const tc = await startCore();
    const r = await tc.call('POST', '/admins', { body: { name: 'tim', roles: ['viewer'] } });
    const secret = (r.body.token.token as string).split('.')[1]!;
    await tc.call('POST', '/admins', { body: { name: 'pat', roles: ['viewer'], password: PASSWORD } });
    const shown = await tc.call('GET', '/admins');
    expect(JSON.stringify(shown.body)).not.toContain(secret);
    expect(JSON.stringify(shown.body)).not.toMatch(/scrypt|hash/);
    await tc.stop();
    let bytes = '';
    for (const f of await readdir(tc.dir)) if (/\.(log|ldb|sst)$/.test(f)) bytes += (await readFile(join(tc.dir, f))).toString('latin1');
    expect(bytes).toContain('tim');
    expect(bytes).not.toContain(secret);
    expect(bytes).not.toContain(PASSWORD);
  });
});
