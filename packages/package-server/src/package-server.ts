import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { TokenBucket, isOutpostError, lifecycle, openDatabase, silentLogger, type Database, type Logger, type Service } from '@outpost/common';
import { createSiteIdentityStore, createSiteLink, type SiteIdentity, type SiteLinkCodes } from '@outpost/common/site-link';
import type { PackageServerConfig } from './config.js';
import { PackageServerErrors } from './errors.js';
import { createHttpServer } from './http-server.js';
import { createPackageServerMetrics } from './metrics.js';
import { Stager } from './stager.js';
import { PackageStore, type FileEntry, type HeldPackage, type Source } from './store.js';

export interface PackageServerDeps {
  logger?: Logger;
}

interface AssignmentsAnswer {
  serial: string;
  pollIntervalMs: number;
  items: { id: string; name: string; version: string; manifestHash: string; files: FileEntry[]; sources: Source[] }[];
}

export interface PackageServer extends Service {
  /** HTTP base URL (after start). */
  readonly url: string;
  readonly id: string | undefined;
  /** UDP port tickles are received on (0 when disabled). */
  readonly ticklePort: number;
  /** Counters: fetched bytes per source, served bytes per requester, HTTP statuses. */
  stats(): Record<string, unknown>;
  /** Fetches assignments now (as a tickle would). */
  sync(): Promise<void>;
}

/** The package server's own codes for the site link's failures (its README promises them). */
const LINK_CODES: SiteLinkCodes = {
  NO_ENROLL_TOKEN: PackageServerErrors.NO_ENROLL_TOKEN,
  ENROLL_REJECTED: PackageServerErrors.ENROLL_REJECTED,
  CORE_UNREACHABLE: PackageServerErrors.CORE_UNREACHABLE,
  CORE_ERROR: PackageServerErrors.CORE_ERROR,
  IDENTITY_CORRUPT: PackageServerErrors.IDENTITY_CORRUPT,
};
const IDENTITY_WHAT = 'package-server identity';

/** The identity a package server keeps in `dataDir`, or undefined before it enrolled. */
export function loadPackageServerIdentity(dataDir: string): Promise<SiteIdentity | undefined> {
  return createSiteIdentityStore({ dir: dataDir, what: IDENTITY_WHAT, codes: LINK_CODES }).load();
}

const SYNC_RETRY_MIN = 1_000;
const SYNC_RETRY_MAX = 60_000;
/** Status changes within this window go to the core in one report. */
const REPORT_BATCH_MS = 100;

/**
 * A package server: enrolls with the core as a constrained or unconstrained package
 * server, fetches its assignments (on a tickle, and by polling), stages them from the
 * allowed sources, reports codebases, and serves package files over HTTP. See README.
 */
export function createPackageServer(config: PackageServerConfig, deps: PackageServerDeps = {}): PackageServer {
  const log = (deps.logger ?? silentLogger()).child({ module: 'package-server', name: config.name });
  const stagingBucket = new TokenBucket(config.bandwidth.staging);
  const servingBucket = new TokenBucket(config.bandwidth.serving);
  let db: Database | undefined;
  let store: PackageStore | undefined;
  let stager: Stager | undefined;
  let watcher: FSWatcher | undefined;
  let http: ReturnType<typeof createHttpServer> | undefined;
  let syncTimer: NodeJS.Timeout | undefined;
  let reportTimer: NodeJS.Timeout | undefined;
  let syncing: Promise<void> | undefined;
  let syncAgain = false;
  let reporting: Promise<void> | undefined;
  let reportAgain = false;
  let reportDue = 0;
  let syncFailures = 0;
  let pollMs = 300_000;
  let running = false;
  const counters = { syncs: 0, syncFailures: 0, reports: 0, reportFailures: 0, tickles: 0, reverified: 0 };
  const metrics = createPackageServerMetrics({ dataDir: config.dataDir, http: () => http?.counters, staging: () => stager?.statuses() ?? [], fetchedFrom: () => stager?.fetchedFrom, counters });

  const publicUrl = (): string => config.http.publicUrl?.replace(/\/+$/, '') ?? http!.url;
  const onTickle = (flags: number): void => {
    counters.tickles++;
    log.debug({ flags }, 'tickled');
    void sync();
  };
  // Enrollment, identity, heartbeat and the core's tickles (PACKAGES or CONFIG: fetch assignments).
  const link = createSiteLink({
    coreUrl: config.coreUrl,
    dataDir: config.dataDir,
    name: config.name,
    log,
    timeoutMs: config.timeout,
    token: { enrollToken: config.enrollToken, enrollTokenFile: config.enrollTokenFile },
    services: () => ({ package: { constrained: config.constrained, url: publicUrl() } }),
    health: () => {
      const held = store ? [...store.packages.values()] : [];
      const failed = held.map((p) => stager?.status(p.id)).filter((s) => s?.state === 'failed');
      return {
        status: failed.length ? 'degraded' : 'ok',
        problems: failed.map((s) => `package ${s!.id} failed to stage: ${s!.error ?? 'unknown error'}`),
        load: { packages: held.length, ready: held.filter((p) => p.ready).length, downloads: http?.counters.active ?? 0 },
      };
    },
    address: () => config.address,
    ...(config.tickle.enabled ? { tickles: { host: config.tickle.host, port: config.tickle.port, advertise: config.tickle.advertise, on: { PACKAGES: onTickle, CONFIG: onTickle } } } : {}),
    codes: LINK_CODES,
    identity: { what: IDENTITY_WHAT },
    enrollInBackground: true,
    onIdentity: (id) => {
      log.info({ id: id.id, constrained: config.constrained }, 'linked to the core');
      // Enrolled in the background (the core was down at start): fetch assignments now.
      if (started) void sync();
    },
  });
  const core = link.client;
  let started = false;

  // ------------------------------------------------------------ assignments

  function scheduleSync(delay: number): void {
    if (!running) return;
    clearTimeout(syncTimer);
    syncTimer = setTimeout(() => void sync(), delay);
    syncTimer.unref();
  }

  function sync(): Promise<void> {
    if (syncing) {
      syncAgain = true;
      return syncing;
    }
    syncing = (async () => {
      // Yield first: a body that finishes without awaiting would clear `syncing` before it is set.
      await Promise.resolve();
      try {
        do {
          syncAgain = false;
          await syncOnce();
        } while (syncAgain && running);
        syncFailures = 0;
        scheduleSync(config.pollInterval || pollMs);
      } catch (err) {
        counters.syncFailures++;
        syncFailures++;
        const delay = Math.min(SYNC_RETRY_MAX, SYNC_RETRY_MIN * 2 ** Math.min(syncFailures - 1, 10));
        log.warn({ code: isOutpostError(err) ? err.code : undefined, err: (err as Error).message, retryInMs: delay }, 'fetching assignments failed; serving what we have');
        scheduleSync(delay);
      } finally {
        syncing = undefined;
      }
    })();
    return syncing;
  }

  async function syncOnce(): Promise<void> {
    const identity = link.identity;
    if (!identity || !store || !stager) return;
    const a = await core.call<AssignmentsAnswer>('GET', `/package-servers/${encodeURIComponent(identity.id)}/assignments`);
    counters.syncs++;
    log.debug({ serial: a.serial, items: a.items.length }, 'assignments fetched');
    pollMs = a.pollIntervalMs || pollMs;
    const wanted = new Set(a.items.map((i) => i.id));
    for (const held of [...store.packages.values()]) {
      if (!wanted.has(held.id)) {
        stager.drop(held.id);
        await store.remove(held.id);
      }
    }
    for (const item of a.items) {
      const held = store.packages.get(item.id);
      let next: HeldPackage;
      if (!held || held.manifestHash !== item.manifestHash) {
        if (held) {
          stager.drop(held.id);
          await store.remove(held.id);
        }
        next = { id: item.id, name: item.name, version: item.version, manifestHash: item.manifestHash, files: item.files, sources: item.sources, ready: false };
        await store.put(next);
      } else {
        next = { ...held, sources: item.sources };
        if (JSON.stringify(held.sources) !== JSON.stringify(item.sources)) await store.put(next);
      }
      stager.ensure(next);
    }
    requestReport();
  }

  // ------------------------------------------------------------ reports

  function requestReport(delay = REPORT_BATCH_MS): void {
    if (!running) return;
    const due = Date.now() + delay;
    if (reportTimer) {
      if (due >= reportDue) return;
      clearTimeout(reportTimer);
    }
    reportDue = due;
    reportTimer = setTimeout(() => {
      reportTimer = undefined;
      void report();
    }, delay);
    reportTimer.unref();
  }

  function report(): Promise<void> {
    if (reporting) {
      reportAgain = true;
      return reporting;
    }
    reporting = (async () => {
      await Promise.resolve();
      try {
        do {
          reportAgain = false;
          const identity = link.identity;
          if (!identity || !stager || !store) return;
          const items = stager.statuses();
          if (items.length === 0) return;
          const res = await core.call<{ unknown: string[] }>('POST', `/package-servers/${encodeURIComponent(identity.id)}/status`, { items });
          counters.reports++;
          log.debug({ items: items.map((i) => `${i.id}:${i.state}`) }, 'status reported');
          for (const id of res.unknown) {
            // No longer assigned (disabled or deleted while we were away).
            if (store.packages.has(id)) {
              stager.drop(id);
              await store.remove(id);
            } else stager.drop(id);
          }
        } while (reportAgain && running);
      } catch (err) {
        counters.reportFailures++;
        log.debug({ err: (err as Error).message }, 'status report failed; will retry');
        requestReport(5_000);
      } finally {
        reporting = undefined;
      }
    })();
    return reporting;
  }

  // ------------------------------------------------------------ store watcher

  async function reverify(sha: string): Promise<void> {
    if (!store || !stager) return;
    http?.evict(sha);
    for (const p of store.holders(sha)) {
      const f = p.files.find((x) => x.sha256 === sha)!;
      const fh = await store.openContent(sha);
      let ok = false;
      if (fh) {
        try {
          const st = await fh.stat();
          if (st.isFile() && st.size === f.size) {
            const h = createHash('sha256');
            for await (const chunk of fh.createReadStream({ highWaterMark: 1 << 20, autoClose: false }) as AsyncIterable<Buffer>) h.update(chunk);
            ok = h.digest('hex') === sha;
          }
        } finally {
          await fh.close();
        }
      }
      if (ok) continue;
      counters.reverified++;
      log.warn({ package: p.id, file: f.path }, 'a stored file vanished or changed; withdrawing the codebase and staging it again');
      await rm(store.pathOf(sha), { force: true });
      for (const holder of store.holders(sha)) {
        await store.put({ ...holder, ready: false });
        stager.restage(holder.id);
      }
      return;
    }
  }

  const onStoreEvent = (event: string, path: string): void => {
    if (event !== 'unlink' && event !== 'change') return;
    const sha = basename(path);
    if (!/^[0-9a-f]{64}$/.test(sha)) return;
    reverify(sha).catch((err: unknown) => log.error({ err }, 're-verification failed'));
  };

  const service = lifecycle({
    async start() {
      db = await openDatabase(join(config.dataDir, 'db'));
      store = new PackageStore(config.dataDir, db, log);
      await store.open();
      const st = store;
      stager = new Stager({
        store: st,
        log,
        concurrency: config.concurrency,
        retry: config.retry,
        reserveBytes: config.reserveBytes,
        timeoutMs: config.timeout,
        bucket: stagingBucket,
        serving: () => (http?.counters.active ?? 0) > 0,
        identity: () => ({ id: link.identity?.id ?? config.name, bearer: link.identity?.credential ?? '' }),
        // A codebase that just became ready (or a failure) is reported at once: the core
        // releases the next wave and wakes servers waiting for a source on it.
        changed: (settled) => requestReport(settled ? 0 : REPORT_BATCH_MS),
      });
      http = createHttpServer({
        host: config.http.host,
        port: config.http.port,
        store: st,
        log,
        chunkSize: config.http.chunkSize,
        smallCacheBytes: config.http.smallFileCache,
        readBuffers: config.http.readBuffers,
        idleTimeoutMs: config.http.idleTimeout,
        maxCountedClients: config.http.maxCountedClients,
        bucket: servingBucket,
        metrics,
        observe: metrics.observeRequest,
        stats: () => ({ id: link.id, name: config.name, constrained: config.constrained, packages: st.serving.size }),
        damaged: (sha) => void reverify(sha).catch((err: unknown) => log.error({ err }, 're-verification failed')),
      });
      await http.start();
      running = true;
      await link.start();
      // Packages held from before a restart: serve the ready ones, resume the others.
      for (const p of st.packages.values()) stager.ensure(p);
      if (config.watchStore) {
        watcher = watch(st.contentDir, { ignoreInitial: true, depth: 1, followSymlinks: false });
        watcher.on('all', onStoreEvent);
        watcher.on('error', (err: unknown) => log.warn({ err }, 'store watcher error'));
        await new Promise<void>((resolve) => watcher!.once('ready', () => resolve()));
      }
      started = true;
      if (link.identity) await sync();
      log.info({ url: publicUrl(), ticklePort: link.ticklePort, packages: st.packages.size }, 'package server started');
    },
    async stop() {
      running = false;
      started = false;
      clearTimeout(syncTimer);
      clearTimeout(reportTimer);
      reportTimer = undefined;
      await watcher?.close();
      await stager?.stop();
      await syncing?.catch(() => undefined);
      await reporting?.catch(() => undefined);
      await link.stop();
      await http?.stop();
      await db?.close();
      watcher = undefined;
      db = undefined;
      log.info('package server stopped');
    },
  });

  return {
    ...service,
    get url() {
      if (!http) throw new Error('package server not started');
      return publicUrl();
    },
    get id() {
      return link.id;
    },
    get ticklePort() {
      return link.ticklePort;
    },
    stats() {
      return {
        id: link.id,
        name: config.name,
        constrained: config.constrained,
        packages: store ? [...store.packages.values()].map((p) => ({ id: p.id, ready: p.ready, status: stager?.status(p.id) })) : [],
        fetchedFrom: stager ? Object.fromEntries(stager.fetchedFrom) : {},
        http: http?.counters,
        tickleStats: link.stats().tickles,
        link: link.stats(),
        ...counters,
      };
    },
    sync,
  };
}
