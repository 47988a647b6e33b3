import { readFile, writeFile, rename, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { isIP } from 'node:net';
import { webcrypto } from 'node:crypto';
import { OutpostError, type ListenTlsOptions } from '@outpost/common';
import type { CoreConfig } from '../config.js';
import { setEnrollmentCertifier } from '../enrollment.js';
import type { CoreContext, CoreModule } from '../module.js';
import { Authority, CA_FILES, toPem } from './authority.js';
import { caConfigSchema, type CaConfig } from './config.js';
import { ConnectionTables } from './connections.js';
import { CaErrors } from './errors.js';
import { caRoutes } from './routes.js';
import { CertificateService } from './service.js';
import { CaStore } from './store.js';
import { EC_ALG } from './x509.js';

const SERVER_KEY = 'server.key';
const SERVER_CERT = 'server.crt';

const caConfigOf = (core: CoreConfig): CaConfig => core.ca ?? caConfigSchema.parse({});

/** Names for the core's own HTTPS certificate: loopback, the listener host, the public URL's host, extras. */
function serverNames(core: CoreConfig, ca: CaConfig): string[] {
  const names = new Set(['localhost', '127.0.0.1', '::1', ...ca.https.names]);
  if (core.http.host !== '0.0.0.0' && core.http.host !== '::' && core.http.host !== '') names.add(core.http.host);
  if (core.http.publicUrl) names.add(new URL(core.http.publicUrl).hostname.replace(/^\[(.*)\]$/, '$1'));
  return [...names].filter((n) => isIP(n) !== 0 || /^[a-z0-9.-]{1,253}$/i.test(n));
}

/**
 * The TLS options for the core's API listener when `ca.https.enabled`: the admin's
 * certificate and key, else the one the CA module issued at start. Undefined: plain HTTP.
 */
export async function coreListenerTls(core: CoreConfig): Promise<ListenTlsOptions | undefined> {
  const ca = caConfigOf(core);
  if (!ca.https.enabled) return undefined;
  const dir = join(core.dataDir, CA_FILES.dir);
  const certFile = ca.https.certFile ?? join(dir, SERVER_CERT);
  const keyFile = ca.https.keyFile ?? join(dir, SERVER_KEY);
  try {
    return { cert: await readFile(certFile), key: await readFile(keyFile) };
  } catch (cause) {
    throw new OutpostError(CaErrors.FILES, `cannot read the HTTPS certificate or key (${certFile}, ${keyFile}): ${(cause as Error).message}`, { cause });
  }
}

/**
 * The certificate authority of the core: issues certificates at enrollment (an optional
 * CSR in `POST /enroll`) and on renewal, revokes those of blocked and deleted principals,
 * serves the CRL and a revocation feed, the quarantine list, and coordinates gateways
 * (routing table, connection tables). See `README.md` in this folder.
 */
export function createCaModule(coreConfig: CoreConfig): CoreModule {
  const config = caConfigOf(coreConfig);
  let service: CertificateService | undefined;
  let timer: NodeJS.Timeout | undefined;
  let reconciling: Promise<void> = Promise.resolve();
  const tables = new ConnectionTables(config.connectionReportTtl);

  return {
    name: 'ca',
    async start(ctx: CoreContext) {
      const { authority, created } = await Authority.open(coreConfig.dataDir, config.caLifetime);
      if (created) ctx.log.info({ coreId: authority.coreId, dir: join(coreConfig.dataDir, CA_FILES.dir) }, 'created the certificate authority');
      const store = new CaStore(ctx.db);
      await store.load();
      for (const sub of ['ca-certs', 'ca-events', 'ca-blocked'] as const) ctx.store.onRemote(sub, (key, value) => store.remote(sub, key, value));
      const svc = new CertificateService(authority, store, config, ctx.registry, ctx.clock, ctx.log, () => ctx.url());
      service = svc;
      setEnrollmentCertifier(ctx.registry, { prepare: (csr, kind) => svc.prepare(csr, kind) });
      if (config.https.enabled && config.https.certFile === undefined) {
        const keys = await webcrypto.subtle.generateKey(EC_ALG, true, ['sign', 'verify']);
        const issued = await authority.issue({ publicKey: keys.publicKey, principal: authority.coreId, kind: 'core', names: serverNames(coreConfig, config), lifetimeMs: config.certificateLifetime });
        const dir = join(coreConfig.dataDir, CA_FILES.dir);
        const keyPem = toPem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
        await writeFile(join(dir, `${SERVER_KEY}.tmp`), keyPem, { mode: 0o600 });
        await chmod(join(dir, `${SERVER_KEY}.tmp`), 0o600);
        await rename(join(dir, `${SERVER_KEY}.tmp`), join(dir, SERVER_KEY));
        await writeFile(join(dir, `${SERVER_CERT}.tmp`), issued.pem + authority.certPem);
        await rename(join(dir, `${SERVER_CERT}.tmp`), join(dir, SERVER_CERT));
      }
      const tick = (): void => {
        if (!ctx.leases.held('ca.reconcile')) return;
        reconciling = reconciling
          .then(async () => {
            await svc.reconcile();
            await store.prune(ctx.clock.now());
          })
          .catch((err: unknown) => ctx.log.error({ err }, 'certificate reconcile failed'));
      };
      tick();
      await reconciling;
      timer = setInterval(tick, config.reconcileInterval);
      timer.unref();
    },
    routes(router, ctx) {
      if (!service) throw new Error('ca module not started');
      caRoutes(router, { ca: service, registry: ctx.registry, clock: ctx.clock, coreUrl: () => ctx.url(), tables });
    },
    async stop() {
      clearInterval(timer);
      await reconciling;
    },
    stats() {
      return service?.stats() ?? {};
    },
    refuses(id) {
      if (!service?.store.blocked.has(id)) return undefined;
      return new OutpostError(CaErrors.BLOCKED, `${id} is blocked by an administrator`, { status: 403 });
    },
  };
}
