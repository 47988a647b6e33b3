import type { Logger } from 'pino';
import { TickleFlags } from '../datagram/codec.js';
import { isOutpostError, SiteLinkErrors } from '../errors.js';
import { lifecycle } from '../lifecycle.js';
import { datagramKey, parseCredential } from '../secrets.js';
import { answerCode, answerStatus, createSiteLinkClient, siteLinkError, type SiteLinkClient, type SiteLinkCodes } from './client.js';
import { enrollSiteServer, readEnrollToken, type EnrollAnswer, type EnrollTokenSource } from './enroll.js';
import { createSiteIdentityStore, isOneOfCoreUrls, type ExtraFields, type LegacyIdentity, type SiteIdentity, type SiteIdentityStore } from './identity.js';
import { CoreTickleListener, type CoreTickleStats } from './tickle-listener.js';

export type TickleFlagName = keyof typeof TickleFlags;

export interface SiteLinkOptions<I extends SiteIdentity = SiteIdentity> {
  /**
   * The core's base URL (no `/api/v1`), or several: active cores of one estate, each call
   * going to the one that answered last and moving on when it fails (`CoreJsonClient`).
   */
  coreUrl: string | readonly string[];
  /** Where `identity.json` lives. */
  dataDir: string;
  /** The site server's name at enrollment. */
  name: string;
  log: Logger;
  /** Bound of each call of the default client, ms. @default 10000 */
  timeoutMs?: number;
  token: EnrollTokenSource;
  /** The services and their URLs the site server states, at enrollment and in each heartbeat. */
  services(): Record<string, unknown>;
  /** Its address, stated at enrollment only (heartbeats never restate it: the grant approves it). */
  address?: () => string | undefined;
  /** Its health and load, sent in each heartbeat (what the core shows; it changes no grant). */
  health?: () => SiteHealth;
  /**
   * Listen for the core's signed tickles on `host:port` (0: any); each flag set in a good
   * tickle calls its handler (a handler given for several flags runs once per tickle).
   */
  tickles?: { host: string; port: number; advertise?: string | undefined; on: Partial<Record<TickleFlagName, (flags: number) => void>> };
  /** Overrides the heartbeat period the core gives (tests). */
  heartbeatIntervalMs?: number;
  /** The client for core calls, when the service needs its own transport (the gateway's CA). */
  client?: SiteLinkClient;
  /** The service's own codes for link failures its README promises. */
  codes?: SiteLinkCodes;
  identity?: {
    /** The service's own (string) fields of the record. */
    extraFields?: ExtraFields<I>;
    /** What the identity is, in messages. */
    what?: string;
    legacy?: LegacyIdentity;
    /** A CSR to send, and how the answer completes the record (the service's own fields). */
    enroll?: () => { csr?: string; complete(answer: EnrollAnswer, base: SiteIdentity): I };
  };
  /** With no identity and no answer from the core: start anyway and enroll in the background. */
  enrollInBackground?: boolean;
  /**
   * An identity for a core URL not in `coreUrl` is dropped and the site server enrolls
   * again (an in-process core's port moved); any URL of the list is the same core.
   */
  reenrollWhenCoreMoves?: boolean;
  /** Called once the site server has an identity (at start, or later in the background). */
  onIdentity?: (identity: I) => void | Promise<void>;
}

/**
 * What a heartbeat reports: `degraded` with the problems a person should look at, and a
 * few load figures (at most 16, non-negative numbers named like `activeDownloads`).
 */
export interface SiteHealth {
  status: 'ok' | 'degraded';
  problems?: string[];
  load?: Record<string, number>;
}

/** Bounds of a reported health, as the core checks them. */
export const SITE_HEALTH_LIMITS = { problems: 16, problemChars: 200, loadKeys: 16 } as const;

/** The health as sent: problems and load within {@link SITE_HEALTH_LIMITS}, non-finite figures dropped. */
export function boundHealth(h: SiteHealth): SiteHealth {
  const problems = (h.problems ?? []).slice(0, SITE_HEALTH_LIMITS.problems).map((p) => p.slice(0, SITE_HEALTH_LIMITS.problemChars));
  const load = Object.entries(h.load ?? {})
    .filter(([k, v]) => /^[a-zA-Z][\w.]{0,39}$/.test(k) && Number.isFinite(v) && v >= 0)
    .slice(0, SITE_HEALTH_LIMITS.loadKeys);
  return { status: h.status, ...(problems.length ? { problems } : {}), ...(load.length ? { load: Object.fromEntries(load) } : {}) };
}

/** The service's health, or `degraded` naming the error when its health check throws (the heartbeat still goes). */
function healthNow(health: () => SiteHealth): SiteHealth {
  try {
    return boundHealth(health());
  } catch (err) {
    return boundHealth({ status: 'degraded', problems: [`health check failed: ${(err as Error).message}`] });
  }
}

export type SiteLinkState = 'stopped' | 'not-enrolled' | 'online' | 'unreachable' | 'identity-unknown' | 'refused';

export interface SiteLinkStats {
  id: string | undefined;
  state: SiteLinkState;
  enrollments: number;
  heartbeats: number;
  heartbeatFailures: number;
  lastHeartbeatAt: number | undefined;
  /** The code of the last heartbeat failure (the core's, or the link's). */
  lastError: string | undefined;
  heartbeatIntervalMs: number;
  tickles: CoreTickleStats | undefined;
  /** The core URL calls go to now, when the client says (several core URLs). */
  coreUrl: string | undefined;
  /** Times calls moved to another core URL, when the client counts them. */
  coreFailovers: number;
}

export interface SiteLink<I extends SiteIdentity = SiteIdentity> {
  /** Binds the tickle socket, loads or enrolls, sends the first heartbeat. Idempotent. */
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly client: SiteLinkClient;
  readonly identity: I | undefined;
  readonly id: string | undefined;
  /** `host:port` the core's tickles go to ('' without a listener). */
  readonly tickleAddress: string;
  readonly ticklePort: number;
  /** Replaces the stored identity (the gateway's renewed certificate). */
  update(identity: I): Promise<void>;
  /** Sends a heartbeat now; false when it failed (logged and counted). */
  heartbeat(): Promise<boolean>;
  stats(): SiteLinkStats;
}

const DEFAULT_HEARTBEAT_MS = 60_000;
const RETRY_MAX_MS = 10_000;
const ENROLL_RETRY_FIRST_MS = 2_000;
const ENROLL_RETRY_MS = 5_000;

/**
 * A site service's one link to the core: its identity (`identity.json`), enrollment with
 * a token, the authenticated client for its core calls, the heartbeat at the interval
 * the core gives, and the listener for the core's signed tickles. See the README.
 */
export function createSiteLink<I extends SiteIdentity = SiteIdentity>(o: SiteLinkOptions<I>): SiteLink<I> {
  const log = o.log.child({ part: 'site-link' });
  const codes = o.codes ?? {};
  const coreUrls: readonly string[] = typeof o.coreUrl === 'string' ? [o.coreUrl] : o.coreUrl;
  const client = o.client ?? createSiteLinkClient(coreUrls, o.timeoutMs ?? 10_000, codes);
  const store: SiteIdentityStore<I> = createSiteIdentityStore<I>({
    dir: o.dataDir,
    ...(o.identity?.extraFields ? { extraFields: o.identity.extraFields } : {}),
    ...(o.identity?.what ? { what: o.identity.what } : {}),
    ...(o.identity?.legacy ? { legacy: o.identity.legacy } : {}),
    codes,
  });
  let identity: I | undefined;
  let key: Buffer | undefined;
  let listener: CoreTickleListener | undefined;
  let tickleAddress = '';
  let running = false;
  let timer: NodeJS.Timeout | undefined;
  let beating: Promise<boolean> | undefined;
  let intervalMs = o.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_MS;
  let state: SiteLinkState = 'stopped';
  const counters = { enrollments: 0, heartbeats: 0, heartbeatFailures: 0, lastHeartbeatAt: undefined as number | undefined, lastError: undefined as string | undefined };

  const handlers = Object.entries(o.tickles?.on ?? {}) as Array<[TickleFlagName, (flags: number) => void]>;
  const onTickle = (flags: number): void => {
    const called = new Set<(flags: number) => void>();
    for (const [name, fn] of handlers) {
      if (!(flags & TickleFlags[name]) || called.has(fn)) continue;
      called.add(fn);
      fn(flags);
    }
  };

  const adopt = async (id: I): Promise<void> => {
    identity = id;
    client.bearer = id.credential;
    const cred = parseCredential(id.credential);
    key = cred ? datagramKey(cred.secret) : undefined;
    await o.onIdentity?.(id);
  };

  const enroll = async (): Promise<I> => {
    const token = await readEnrollToken(o.token, codes);
    if (!token) throw siteLinkError(codes, 'NO_ENROLL_TOKEN', `no ${o.identity?.what ?? 'site-server identity'} in ${store.file} and no enrollToken or enrollTokenFile to enroll with`, { details: { file: store.file } });
    const extra = o.identity?.enroll?.();
    const answer = await enrollSiteServer(
      client,
      token,
      { name: o.name, services: o.services(), address: o.address?.(), tickleAddress: tickleAddress || undefined, csr: extra?.csr },
      codes,
    );
    const core = client.currentUrl ?? coreUrls[0] ?? '';
    const base: SiteIdentity = { version: 1, id: answer.id, credential: answer.credential, coreUrl: core };
    const id = extra ? extra.complete(answer, base) : (base as I);
    await store.save(id);
    counters.enrollments++;
    if (answer.heartbeatIntervalMs && o.heartbeatIntervalMs === undefined) intervalMs = answer.heartbeatIntervalMs;
    log.info({ id: answer.id, core }, 'enrolled with the core');
    return id;
  };

  const schedule = (delay: number): void => {
    if (!running) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      void heartbeat().then((ok) => schedule(ok || state === 'identity-unknown' ? period() : Math.min(period(), RETRY_MAX_MS)));
    }, delay);
    timer.unref();
  };
  /** A little ahead of the interval, so that a slow call never makes a heartbeat late. */
  const period = (): number => Math.max(50, Math.floor(intervalMs * 0.9));

  const heartbeatOnce = async (): Promise<boolean> => {
    const id = identity;
    if (!id) return false;
    const tickle = tickleAddress || undefined;
    try {
      const r = await client.call<{ heartbeatIntervalMs?: unknown } | undefined>('POST', `/site-servers/${encodeURIComponent(id.id)}/heartbeat`, {
        services: o.services(),
        ...(o.health ? { health: healthNow(o.health) } : {}),
        ...(tickle ? { tickleAddress: tickle } : {}),
      });
      if (!running) return true;
      const next = r?.heartbeatIntervalMs;
      if (typeof next === 'number' && next > 0 && o.heartbeatIntervalMs === undefined) intervalMs = next;
      counters.heartbeats++;
      counters.lastHeartbeatAt = Date.now();
      counters.lastError = undefined;
      if (state !== 'online') log.info({ id: id.id }, 'heartbeat accepted: online at the core');
      state = 'online';
      return true;
    } catch (err) {
      if (!running) return false;
      counters.heartbeatFailures++;
      const status = answerStatus(err);
      const coreCode = answerCode(err);
      if (status === 401) {
        counters.lastError = SiteLinkErrors.IDENTITY_UNKNOWN;
        if (state !== 'identity-unknown') {
          log.error({ id: id.id, code: SiteLinkErrors.IDENTITY_UNKNOWN, coreCode, file: store.file }, 'the core no longer knows this site server (deleted there?): delete the identity file and enroll again with a new token');
        }
        state = 'identity-unknown';
      } else if (status === 403) {
        counters.lastError = coreCode ?? SiteLinkErrors.HEARTBEAT_REFUSED;
        log.warn({ id: id.id, code: SiteLinkErrors.HEARTBEAT_REFUSED, coreCode, err: (err as Error).message }, 'the core refused the heartbeat');
        state = 'refused';
      } else {
        counters.lastError = status === undefined ? (isOutpostError(err) ? err.code : SiteLinkErrors.CORE_UNREACHABLE) : (coreCode ?? SiteLinkErrors.CORE_ERROR);
        log.warn({ id: id.id, code: counters.lastError, status, err: (err as Error).message }, 'heartbeat to the core failed');
        state = 'unreachable';
      }
      return false;
    }
  };

  const heartbeat = (): Promise<boolean> => {
    if (beating) return beating;
    beating = heartbeatOnce().finally(() => {
      beating = undefined;
    });
    return beating;
  };

  const enrollLater = (delay: number): void => {
    if (!running) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (!running || identity) return;
      enroll()
        .then(async (id) => {
          if (!running) return;
          await adopt(id);
          schedule(0);
        })
        .catch((err: unknown) => {
          log.warn({ code: isOutpostError(err) ? err.code : undefined, err: (err as Error).message, retryInMs: ENROLL_RETRY_MS }, 'enrollment failed; will retry');
          enrollLater(ENROLL_RETRY_MS);
        });
    }, delay);
    timer.unref();
  };

  const service = lifecycle({
    async start() {
      running = true;
      state = 'not-enrolled';
      if (o.tickles) {
        listener = new CoreTickleListener(() => key, onTickle, o.log.child({ part: 'core-tickles' }));
        tickleAddress = (await listener.start(o.tickles.host, o.tickles.port, o.tickles.advertise)).advertised;
      }
      let id = await store.load();
      if (id && o.reenrollWhenCoreMoves && !isOneOfCoreUrls(id.coreUrl, coreUrls)) {
        log.info({ was: id.coreUrl, core: coreUrls }, 'the identity belongs to another core URL: enrolling again');
        id = undefined;
      }
      if (!id) {
        try {
          id = await enroll();
        } catch (err) {
          if (!o.enrollInBackground || answerStatus(err) !== undefined || !isUnreachable(err, codes)) throw err;
          log.warn({ code: (err as { code?: string }).code, err: (err as Error).message }, 'cannot enroll yet (core unreachable); will retry');
          enrollLater(ENROLL_RETRY_FIRST_MS);
          return;
        }
      }
      await adopt(id);
      await heartbeat();
      schedule(period());
    },
    async stop() {
      running = false;
      clearTimeout(timer);
      timer = undefined;
      // An in-flight heartbeat is not awaited (a core that does not answer would hold the
      // stop for the whole call timeout); its outcome schedules nothing once stopped.
      await listener?.stop();
      listener = undefined;
      state = 'stopped';
    },
  });

  return {
    ...service,
    client,
    get identity() {
      return identity;
    },
    get id() {
      return identity?.id;
    },
    get tickleAddress() {
      return tickleAddress;
    },
    get ticklePort() {
      return listener?.port ?? 0;
    },
    async update(next: I) {
      await store.save(next);
      identity = next;
      client.bearer = next.credential;
      const cred = parseCredential(next.credential);
      key = cred ? datagramKey(cred.secret) : undefined;
    },
    heartbeat,
    stats() {
      return { id: identity?.id, state, ...counters, heartbeatIntervalMs: intervalMs, tickles: listener?.stats, coreUrl: client.currentUrl, coreFailovers: client.failovers ?? 0 };
    },
  };
}

/** No answer from the core (as opposed to a refusal or a local failure). */
function isUnreachable(err: unknown, codes: SiteLinkCodes): boolean {
  const code = (err as { code?: unknown }).code;
  return code === SiteLinkErrors.CORE_UNREACHABLE || (codes.CORE_UNREACHABLE !== undefined && code === codes.CORE_UNREACHABLE);
}
