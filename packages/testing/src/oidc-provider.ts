import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import Provider from 'oidc-provider';

/** A user of the test provider: what `preferred_username` and `groups` it hands out. */
export interface TestOidcAccount {
  username: string;
  groups: string[];
}

export interface TestOidcProvider {
  issuer: string;
  server: Server;
  /** Code exchanges asked for (a refused callback must not get as far). */
  tokenRequests: number;
  close(): Promise<void>;
}

/** The provider's ID-token signing key (one per test process). */
const SIGNING_KEY = { ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }), kid: 'test', use: 'sig', alg: 'RS256' };

/**
 * A real OpenID Connect provider (`oidc-provider`, the certified one) on 127.0.0.1 `port`
 * for a test: one confidential client with PKCE required whose redirect URIs are given,
 * the `groups` claim, and `accounts` as its users. Its login page (`GET /interaction/:uid`)
 * is a form with a user field, as a browser would fill it; `POST /interaction/:uid` with
 * `user` (form field or query) logs that account in and consents, as a login page would
 * after checking a password.
 */
export async function startOidcProvider(opts: {
  port: number;
  client: { id: string; secret: string };
  redirectUris: string[];
  accounts: Record<string, TestOidcAccount>;
  /** Put the claims in the ID token too (else only userinfo has them). */
  claimsInIdToken?: boolean;
}): Promise<TestOidcProvider> {
  const issuer = `http://127.0.0.1:${opts.port}`;
  const provider = new Provider(issuer, {
    clients: [{ client_id: opts.client.id, client_secret: opts.client.secret, redirect_uris: opts.redirectUris, grant_types: ['authorization_code'], response_types: ['code'] }],
    pkce: { required: () => true },
    claims: { openid: ['sub'], profile: ['preferred_username'], groups: ['groups'] },
    conformIdTokenClaims: !opts.claimsInIdToken,
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    cookies: { keys: ['oidc-test-cookie-key-0123456789'] },
    jwks: { keys: [SIGNING_KEY] },
    ttl: { AuthorizationCode: 60, Interaction: 600, Session: 600, Grant: 600, AccessToken: 600, IdToken: 600 },
    findAccount: (_ctx: unknown, id: string) => {
      const a = opts.accounts[id];
      return a ? { accountId: id, claims: () => ({ sub: id, preferred_username: a.username, groups: a.groups }) } : undefined;
    },
  });
  const handle = provider.callback();
  const tp: TestOidcProvider = {
    issuer,
    server: createServer((req, res) => {
      const url = new URL(req.url ?? '/', issuer);
      if (url.pathname === '/token') tp.tokenRequests++;
      if (url.pathname.startsWith('/interaction/') && req.method === 'GET') {
        res.setHeader('content-type', 'text/html; charset=utf-8');
        res.end(`<!doctype html><title>Test IdP</title><form method="post" action="${url.pathname}"><label>User <input name="user" autocomplete="username"></label><button type="submit">Log in</button></form>`);
        return;
      }
      if (url.pathname.startsWith('/interaction/') && req.method === 'POST') {
        void (async () => {
          let body = '';
          for await (const chunk of req) body += String(chunk);
          const accountId = url.searchParams.get('user') ?? new URLSearchParams(body).get('user') ?? '';
          const details = await provider.interactionDetails(req, res);
          const grant = new provider.Grant({ accountId, clientId: String(details.params.client_id) });
          grant.addOIDCScope(String(details.params.scope));
          const grantId = await grant.save();
          await provider.interactionFinished(req, res, { login: { accountId }, consent: { grantId } }, { mergeWithLastSubmission: false });
        })().catch((err: unknown) => {
          res.statusCode = 500;
          res.end(String(err));
        });
        return;
      }
      handle(req, res);
    }),
    tokenRequests: 0,
    async close() {
      tp.server.closeAllConnections();
      await new Promise<void>((r) => tp.server.close(() => r()));
    },
  };
  tp.server.listen(opts.port, '127.0.0.1');
  await once(tp.server, 'listening');
  return tp;
}
