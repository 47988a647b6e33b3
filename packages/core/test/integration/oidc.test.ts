import { freePort, waitFor } from '@outpost/testing';
import { startOidcProvider, type TestOidcProvider } from '@outpost/testing/oidc';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, startCore, type TestCore } from './harness.js';

// Single sign-on against a real OpenID Connect provider (oidc-provider) on 127.0.0.1,
// driven like a browser: plain fetch without following redirects, and a cookie jar.

const CLIENT = { id: 'outpost-console', secret: 'a-client-secret-of-decent-length-1234567890' };
const CALLBACK = '/api/v1/session/sso/callback';
/** The provider's users: id → preferred_username and groups. */
const ACCOUNTS: Record<string, { username: string; groups: string[] }> = {
  hanna: { username: 'Hanna', groups: ['it-helpdesk', 'everyone'] },
  sam: { username: 'sam', groups: ['sales', 'everyone'] },
  ops: { username: 'ops', groups: ['it-helpdesk', 'it-admins'] },
  local: { username: 'lena', groups: ['it-admins'] },
};

const providers: TestOidcProvider[] = [];

afterEach(async () => {
  await cleanup();
  for (const p of providers.splice(0)) await p.close();
});

/** The test's provider (@outpost/testing/oidc) on `port`, sending browsers back to the core on `corePort`. */
async function startProvider(port: number, corePort: number, opts: { claimsInIdToken?: boolean } = {}): Promise<TestOidcProvider> {
  const p = await startOidcProvider({ port, client: CLIENT, redirectUris: [`http://127.0.0.1:${corePort}${CALLBACK}`], accounts: ACCOUNTS, ...opts });
  providers.push(p);
  return p;
}

/** A browser's cookies, per host:port (enough here: no paths, no expiry but Max-Age=0). */
class Browser {
  readonly jar = new Map<string, Map<string, string>>();

  cookies(url: string): Map<string, string> {
    const host = new URL(url).host;
    let m = this.jar.get(host);
    if (!m) this.jar.set(host, (m = new Map()));
    return m;
  }

  async get(url: string, method = 'GET'): Promise<Response> {
    const jar = this.cookies(url);
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { method, redirect: 'manual', headers: cookie ? { cookie } : {} });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const i = pair!.indexOf('=');
      const name = pair!.slice(0, i).trim();
      const value = pair!.slice(i + 1).trim();
      if (/;\s*max-age=0/i.test(line) || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    return res;
  }
}

function location(res: Response, base: string): string {
  const l = res.headers.get('location');
  if (!l) throw new Error(`no Location in a ${res.status} answer: ${res.statusText}`);
  return new URL(l, base).href;
}

/**
 * Sign-in up to the provider's redirect back: start at the core, log in at the provider
 * as `user`, and answer the callback URL the provider sends the browser to (not yet
 * followed), with the start's redirect for inspection.
 */
async function toCallback(tc: TestCore, browser: Browser, user: string): Promise<{ callback: URL; start: Response }> {
  const start = await browser.get(`${tc.url}/api/v1/session/sso/start`);
  expect(start.status).toBe(302);
  let url = location(start, tc.url);
  for (let hops = 0; hops < 10; hops++) {
    if (url.startsWith(tc.url)) return { callback: new URL(url), start };
    const interaction = new URL(url).pathname.startsWith('/interaction/');
    const res = await browser.get(interaction ? `${url}?user=${user}` : url, interaction ? 'POST' : 'GET');
    if (res.status < 300 || res.status >= 400) throw new Error(`provider answered ${res.status} at ${url}: ${await res.text()}`);
    url = location(res, url);
  }
  throw new Error('the provider never sent the browser back');
}

/** Follows the callback; answers where the core sent the browser. */
async function callback(browser: Browser, url: URL): Promise<{ status: number; landing: URL }> {
  const res = await browser.get(url.href);
  return { status: res.status, landing: new URL(location(res, url.href)) };
}

async function coreWithSso(opts: { providerPort?: number; claimsInIdToken?: boolean; perAddressPerMinute?: number } = {}): Promise<{ tc: TestCore; provider: TestOidcProvider | undefined }> {
  const corePort = await freePort();
  const providerPort = opts.providerPort ?? (await freePort());
  const provider = opts.providerPort ? undefined : await startProvider(providerPort, corePort, opts);
  const tc = await startCore({
    config: {
      http: { port: corePort },
      admins: {
        ...(opts.perAddressPerMinute ? { lockout: { perAddressPerMinute: opts.perAddressPerMinute } } : {}),
        oidc: {
          issuer: `http://127.0.0.1:${providerPort}`,
          clientId: CLIENT.id,
          clientSecret: CLIENT.secret,
          groups: { 'it-helpdesk': { roles: ['viewer'], sites: ['hq'] }, 'it-admins': { roles: ['admin'] } },
          label: 'Corp SSO',
        },
      },
    },
  });
  expect(tc.url).toBe(`http://127.0.0.1:${corePort}`);
  return { tc, provider };
}

const session = (browser: Browser, tc: TestCore) => browser.cookies(tc.url).get('outpost_session');

async function asBrowser(tc: TestCore, browser: Browser, method: string, path: string, body?: unknown) {
  const cookie = `outpost_session=${session(browser, tc) ?? ''}`;
  const res = await fetch(`${tc.url}/api/v1${path}`, { method, headers: { cookie, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

describe('single sign-on (OpenID Connect)', () => {
  it('signs a help-desk user in as a viewer scoped to hq, who may read but not change', async () => {
    const { tc } = await coreWithSso();
    expect((await tc.call('POST', '/sites', { body: { name: 'hq', subnets: ['10.1.0.0/16'] } })).status).toBe(201);
    expect((await tc.call('GET', '/session/sso', { token: null })).body).toEqual({ enabled: true, label: 'Corp SSO' });

    const browser = new Browser();
    const flow = await toCallback(tc, browser, 'hanna');
    const start = flow.start;
    const stateCookie = start.headers.getSetCookie().find((c) => c.startsWith('outpost_sso='));
    expect(stateCookie).toMatch(/HttpOnly/);
    expect(stateCookie).toMatch(/SameSite=Lax/);
    const authorize = new URL(location(start, tc.url));
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorize.searchParams.get('code_challenge')).toMatch(/^[\w-]{43}$/);
    expect(authorize.searchParams.get('state')).toBe(browser.cookies(tc.url).get('outpost_sso'));
    expect(authorize.searchParams.get('redirect_uri')).toBe(`${tc.url}${CALLBACK}`);
    expect(authorize.searchParams.get('scope')).toBe('openid profile email groups');
    // Another browser signing in meanwhile does not disturb this one.
    await toCallback(tc, new Browser(), 'sam');

    const res = await browser.get(flow.callback.href);
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/console/');
    const sessionCookie = res.headers.getSetCookie().find((c) => c.startsWith('outpost_session='));
    expect(sessionCookie).toMatch(/HttpOnly/);
    expect(sessionCookie).toMatch(/SameSite=Strict/);
    expect(browser.cookies(tc.url).has('outpost_sso')).toBe(false);

    const me = await asBrowser(tc, browser, 'GET', '/session');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ name: 'hanna', roles: ['viewer'], sites: ['hq'], via: 'sso' });
    expect((await asBrowser(tc, browser, 'GET', '/sites')).status).toBe(200);
    const write = await asBrowser(tc, browser, 'POST', '/sites', { name: 'branch', subnets: ['10.2.0.0/16'] });
    expect(write.status).toBe(403);
    expect(write.body.error.code).toBe('CORE_FORBIDDEN');
    expect((await tc.call('GET', '/sites/branch')).status).toBe(404);
    const account = await tc.call('GET', '/admins/hanna');
    expect(account.body).toMatchObject({ name: 'hanna', sso: true, password: false, roles: ['viewer'], sites: ['hq'] });
    // The audit log has the sign-in (a GET callback) and her refused write.
    const audit = (await tc.call('GET', '/audit?admin=hanna')).body.items as { action: string; actor: { via?: string }; outcome: { result: string } }[];
    expect(audit.find((e) => e.action === 'session.sso')).toMatchObject({ actor: { via: 'sso' }, outcome: { result: 'ok' } });
    expect(audit.find((e) => e.action === 'sites.create')).toMatchObject({ outcome: { result: 'refused' } });
  });

  it('reads the claims from the ID token when the provider puts them there, and unions the groups: unscoped admin plus viewer', async () => {
    const { tc } = await coreWithSso({ claimsInIdToken: true });
    const browser = new Browser();
    const { callback: cb } = await toCallback(tc, browser, 'ops');
    const done = await callback(browser, cb);
    expect(done.landing.pathname).toBe('/console/');
    expect(done.landing.search).toBe('');
    const me = await asBrowser(tc, browser, 'GET', '/session');
    expect(me.body.roles.sort()).toEqual(['admin', 'viewer']);
    expect(me.body.sites).toBeUndefined();
    expect((await asBrowser(tc, browser, 'POST', '/sites', { name: 'branch', subnets: ['10.2.0.0/16'] })).status).toBe(201);
  });

  it('refuses a callback whose state was used already, with CORE_SSO_FAILED, no new session and no second code exchange', async () => {
    const { tc, provider } = await coreWithSso();
    const browser = new Browser();
    const { callback: cb } = await toCallback(tc, browser, 'hanna');
    const state = cb.searchParams.get('state')!;
    expect((await callback(browser, cb)).landing.search).toBe('');
    const first = session(browser, tc);
    expect(first).toBeDefined();
    expect(provider!.tokenRequests).toBe(1);
    // Replay: the same callback with the state cookie put back.
    browser.cookies(tc.url).set('outpost_sso', state);
    const again = await browser.get(cb.href);
    expect(provider!.tokenRequests).toBe(1);
    expect(new URL(location(again, tc.url)).searchParams.get('sso_error')).toBe('CORE_SSO_FAILED');
    expect(again.headers.getSetCookie().some((c) => c.startsWith('outpost_session='))).toBe(false);
    expect(session(browser, tc)).toBe(first);
  });

  it('refuses a wrong state: one that does not match the cookie, and one the core never issued', async () => {
    const { tc } = await coreWithSso();
    const browser = new Browser();
    const { callback: cb } = await toCallback(tc, browser, 'hanna');
    const wrong = new URL(cb);
    wrong.searchParams.set('state', `${cb.searchParams.get('state')}x`);
    const r1 = await callback(browser, wrong);
    expect(r1.status).toBe(302);
    expect(r1.landing.pathname).toBe('/console/');
    expect(r1.landing.searchParams.get('sso_error')).toBe('CORE_SSO_FAILED');
    expect(session(browser, tc)).toBeUndefined();

    const forged = 'forged-state-value-0123456789';
    const unknown = new URL(cb);
    unknown.searchParams.set('state', forged);
    browser.cookies(tc.url).set('outpost_sso', forged);
    expect((await callback(browser, unknown)).landing.searchParams.get('sso_error')).toBe('CORE_SSO_FAILED');
    expect(session(browser, tc)).toBeUndefined();
  });

  it('refuses a state from another browser (no state cookie), and spends it so the first browser cannot use it either', async () => {
    const { tc, provider } = await coreWithSso();
    const victim = new Browser();
    const { callback: cb } = await toCallback(tc, victim, 'hanna');
    const attacker = new Browser();
    const r = await callback(attacker, cb);
    expect(r.landing.searchParams.get('sso_error')).toBe('CORE_SSO_FAILED');
    expect(session(attacker, tc)).toBeUndefined();
    const late = await callback(victim, cb);
    expect(late.landing.searchParams.get('sso_error')).toBe('CORE_SSO_FAILED');
    expect(session(victim, tc)).toBeUndefined();
    expect(provider!.tokenRequests).toBe(0);
  });

  it('limits sign-in starts per address (the pending sign-ins are bounded), sending the browser back with CORE_SIGN_IN_LOCKED', async () => {
    const { tc } = await coreWithSso({ perAddressPerMinute: 2 });
    const browser = new Browser();
    const starts = [];
    for (let i = 0; i < 3; i++) starts.push(await browser.get(`${tc.url}/api/v1/session/sso/start`));
    expect(starts.map((r) => new URL(location(r, tc.url)).origin === tc.url)).toEqual([false, false, true]);
    expect(new URL(location(starts[2]!, tc.url)).searchParams.get('sso_error')).toBe('CORE_SIGN_IN_LOCKED');
  });

  it('refuses a user in no mapped group with CORE_SSO_NO_ROLE and creates no account', async () => {
    const { tc } = await coreWithSso();
    const browser = new Browser();
    const { callback: cb } = await toCallback(tc, browser, 'sam');
    const r = await callback(browser, cb);
    expect(r.landing.searchParams.get('sso_error')).toBe('CORE_SSO_NO_ROLE');
    expect(session(browser, tc)).toBeUndefined();
    expect((await tc.call('GET', '/admins/sam')).status).toBe(404);
    // Recorded as a refused single sign-on, though the browser got a redirect.
    const refused = (await tc.call('GET', '/audit?action=session.sso')).body.items as { outcome: { code?: string; result: string } }[];
    expect(refused[0]?.outcome).toMatchObject({ code: 'CORE_SSO_NO_ROLE', result: 'refused' });
  });

  it('refuses a tampered code (the provider does not redeem it) with CORE_SSO_FAILED', async () => {
    const { tc } = await coreWithSso();
    const browser = new Browser();
    const { callback: cb } = await toCallback(tc, browser, 'hanna');
    const code = cb.searchParams.get('code')!;
    cb.searchParams.set('code', `${code.slice(0, -1)}${code.endsWith('A') ? 'B' : 'A'}`);
    const r = await callback(browser, cb);
    expect(r.landing.searchParams.get('sso_error')).toBe('CORE_SSO_FAILED');
    expect(session(browser, tc)).toBeUndefined();
    expect((await tc.call('GET', '/admins/hanna')).status).toBe(404);
  });

  it('does not let single sign-on take over a local administrator of the same name', async () => {
    const { tc } = await coreWithSso();
    expect((await tc.call('POST', '/admins', { body: { name: 'lena', roles: ['viewer'], password: 'correct horse battery 42' } })).status).toBe(201);
    const browser = new Browser();
    const { callback: cb } = await toCallback(tc, browser, 'local');
    expect((await callback(browser, cb)).landing.searchParams.get('sso_error')).toBe('CORE_SSO_FAILED');
    expect(session(browser, tc)).toBeUndefined();
    expect((await tc.call('GET', '/admins/lena')).body).toMatchObject({ sso: false, roles: ['viewer'] });
  });

  it('starts without a reachable provider, answers CORE_SSO_UNAVAILABLE, and signs in once the provider is up', async () => {
    const providerPort = await freePort();
    const { tc } = await coreWithSso({ providerPort });
    const browser = new Browser();
    const early = await browser.get(`${tc.url}/api/v1/session/sso/start`);
    expect(early.status).toBe(302);
    expect(new URL(location(early, tc.url)).searchParams.get('sso_error')).toBe('CORE_SSO_UNAVAILABLE');
    expect(browser.cookies(tc.url).has('outpost_sso')).toBe(false);
    expect((await tc.call('GET', '/stats')).body.admins.sso).toEqual({ discovered: false, pending: 0 });
    await startProvider(providerPort, Number(new URL(tc.url).port));
    await waitFor(async () => (await fetch(`${tc.url}/api/v1/session/sso/start`, { redirect: 'manual' })).headers.get('location')?.startsWith(`http://127.0.0.1:${providerPort}/`) === true, { timeoutMs: 20_000, intervalMs: 250, what: 'discovery of the late provider' });
    const { callback: cb } = await toCallback(tc, browser, 'hanna');
    expect((await callback(browser, cb)).landing.search).toBe('');
    expect((await asBrowser(tc, browser, 'GET', '/session')).body.name).toBe('hanna');
    expect((await tc.call('GET', '/stats')).body.admins.sso.discovered).toBe(true);
  });

  it('answers CORE_SSO_NOT_CONFIGURED on a core without core.admins.oidc', async () => {
    const tc = await startCore();
    expect((await tc.call('GET', '/session/sso', { token: null })).body).toEqual({ enabled: false });
    for (const path of ['start', 'callback?code=x&state=y']) {
      const res = await fetch(`${tc.url}/api/v1/session/sso/${path}`, { redirect: 'manual' });
      expect(res.status).toBe(302);
      expect(new URL(location(res, tc.url)).searchParams.get('sso_error')).toBe('CORE_SSO_NOT_CONFIGURED');
    }
  });
});
