import { OutpostError, type Logger } from '@outpost/common';
import * as oidc from 'openid-client';
import type { Clock } from '../registry.js';
import { isLoopbackUrl, type OidcConfig } from './config.js';
import { AdminErrors } from './errors.js';
import { groupsOf, nameOf } from './oidc-claims.js';
import { PendingSignIns } from './oidc-pending.js';

/** Seconds a request to the provider may take (discovery, token, userinfo). */
const REQUEST_TIMEOUT_S = 10;
/** Discovery retries: first after this, doubled per failure up to `RETRY_MAX_MS`. */
const RETRY_FIRST_MS = 1_000;
const RETRY_MAX_MS = 60_000;

/** Who the provider vouched for: the (lowercased) name and the groups, before mapping. */
export interface SsoUser {
  name: string;
  groups: string[];
  subject: string;
}

/**
 * The OpenID Connect relying party (openid-client: discovery, authorization code + PKCE,
 * ID token validation). Discovery runs at start; while the provider cannot be reached it
 * is retried in the background with back-off, and sign-in answers 503
 * `CORE_SSO_UNAVAILABLE` until it succeeds.
 */
export class OidcClient {
  readonly pending: PendingSignIns;
  #config: oidc.Configuration | undefined;
  #lastError: string | undefined;
  #retry: NodeJS.Timeout | undefined;
  #retryMs = RETRY_FIRST_MS;
  #stopped = false;

  constructor(
    readonly config: OidcConfig,
    private readonly log: Logger,
    private readonly clock: Clock,
  ) {
    this.pending = new PendingSignIns(clock);
  }

  /** True once the provider's metadata is known. */
  get ready(): boolean {
    return this.#config !== undefined;
  }

  /** Discovers the provider once (waiting for that answer); on failure keeps trying in the background. */
  async start(): Promise<void> {
    await this.#discover();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retry);
  }

  async #discover(): Promise<void> {
    if (this.#stopped) return;
    const issuer = new URL(this.config.issuer);
    try {
      const found = await oidc.discovery(issuer, this.config.clientId, undefined, oidc.None(), {
        execute: isLoopbackUrl(issuer) ? [oidc.allowInsecureRequests] : [],
        timeout: REQUEST_TIMEOUT_S,
      });
      this.#config = this.#client(found.serverMetadata());
      this.#lastError = undefined;
      this.log.info({ issuer: this.config.issuer, authorizationEndpoint: found.serverMetadata().authorization_endpoint }, 'identity provider discovered');
    } catch (err) {
      if (this.#stopped) return;
      this.#lastError = reason(err);
      this.log.warn({ issuer: this.config.issuer, err: this.#lastError, retryInMs: this.#retryMs }, 'identity provider discovery failed; retrying');
      this.#retry = setTimeout(() => void this.#discover(), this.#retryMs);
      this.#retry.unref();
      this.#retryMs = Math.min(this.#retryMs * 2, RETRY_MAX_MS);
    }
  }

  /**
   * The client for the discovered metadata: a confidential client authenticates with
   * client_secret_basic (the method every provider must support) unless the provider lists
   * only client_secret_post; a public client relies on PKCE alone.
   */
  #client(server: oidc.ServerMetadata): oidc.Configuration {
    const secret = this.config.clientSecret;
    const methods = server.token_endpoint_auth_methods_supported;
    const auth = secret === undefined ? oidc.None() : methods && !methods.includes('client_secret_basic') && methods.includes('client_secret_post') ? oidc.ClientSecretPost(secret) : oidc.ClientSecretBasic(secret);
    const c = new oidc.Configuration(server, this.config.clientId, secret === undefined ? undefined : { client_secret: secret }, auth);
    if (isLoopbackUrl(new URL(this.config.issuer))) oidc.allowInsecureRequests(c);
    c.timeout = REQUEST_TIMEOUT_S;
    return c;
  }

  #discovered(): oidc.Configuration {
    if (this.#config) return this.#config;
    throw new OutpostError(AdminErrors.SSO_UNAVAILABLE, `the identity provider ${this.config.issuer} has not answered yet${this.#lastError ? ` (${this.#lastError})` : ''}; retrying`, { status: 503 });
  }

  /**
   * Starts a sign-in: a fresh state, nonce and PKCE verifier kept here (keyed by state), and
   * the provider URL to send the browser to (with the S256 challenge).
   */
  async begin(redirectUri: string): Promise<{ url: URL; state: string }> {
    const c = this.#discovered();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(c, {
      redirect_uri: redirectUri,
      response_type: 'code',
      scope: this.config.scopes.join(' '),
      state,
      nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const dropped = this.pending.add({ state, nonce, verifier, redirectUri, createdAt: this.clock.now() });
    if (dropped > 0) this.log.warn({ dropped, pending: this.pending.size }, 'too many sign-ins waiting for the provider: dropped the oldest');
    return { url, state };
  }

  /**
   * Ends a sign-in: `state` (from the callback, already matched to the browser's cookie)
   * must be waiting here; the code is exchanged with its verifier, the ID token validated
   * (signature, issuer, audience, nonce, expiry), and the name and groups read from the ID
   * token or, when it lacks them, from userinfo.
   */
  async finish(state: string, query: URLSearchParams): Promise<SsoUser> {
    const c = this.#discovered();
    const p = this.pending.take(state);
    if (!p) throw failed('the sign-in is unknown, was used already or expired (10 minutes): start again');
    const current = new URL(p.redirectUri);
    current.search = query.toString();
    let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      tokens = await oidc.authorizationCodeGrant(c, current, { expectedState: p.state, expectedNonce: p.nonce, pkceCodeVerifier: p.verifier, idTokenExpected: true });
    } catch (err) {
      throw providerError(err, 'the code exchange or ID token was refused');
    }
    const claims = tokens.claims();
    if (!claims) throw failed('the provider sent no ID token');
    let name: unknown = claims[this.config.nameClaim];
    let groups: unknown = claims[this.config.groupsClaim];
    if (name === undefined || groups === undefined) {
      try {
        const info = await oidc.fetchUserInfo(c, tokens.access_token, claims.sub);
        name ??= info[this.config.nameClaim];
        groups ??= info[this.config.groupsClaim];
      } catch (err) {
        throw providerError(err, 'userinfo was refused');
      }
    }
    const user = nameOf(name);
    if (!user) throw failed(`the provider sent no ${this.config.nameClaim} claim (core.admins.oidc.nameClaim)`);
    return { name: user, groups: groupsOf(groups), subject: claims.sub };
  }
}

function failed(message: string, cause?: unknown): OutpostError {
  return new OutpostError(AdminErrors.SSO_FAILED, message, { status: 403, ...(cause === undefined ? {} : { cause }) });
}

/** A provider or validation error: refused (`CORE_SSO_FAILED`), or unreachable (`CORE_SSO_UNAVAILABLE`). */
function providerError(err: unknown, what: string): OutpostError {
  const timedOut = err instanceof oidc.ClientError && err.code === 'OAUTH_TIMEOUT';
  if (!timedOut && (err instanceof oidc.AuthorizationResponseError || err instanceof oidc.ResponseBodyError || err instanceof oidc.WWWAuthenticateChallengeError || err instanceof oidc.ClientError)) {
    return failed(`${what}: ${reason(err)}`, err);
  }
  return new OutpostError(AdminErrors.SSO_UNAVAILABLE, `${what}: the identity provider did not answer (${reason(err)})`, { status: 503, cause: err });
}

/** A short reason: the OAuth error code and description, or the library's code and message. */
function reason(err: unknown): string {
  if (err instanceof oidc.AuthorizationResponseError || err instanceof oidc.ResponseBodyError) return `${err.error}${err.error_description ? `: ${err.error_description}` : ''}`;
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const cause = err.cause instanceof Error ? ` (${err.cause.message})` : '';
    return `${typeof code === 'string' ? `${code}: ` : ''}${err.message}${cause}`;
  }
  return String(err);
}
