import { createHttpApp, listenHttp, mountRouter, openDatabase, publicRoute, readJson, silentLogger, z, type Database, type Listening } from '@outpost/common';
import { removeDir, tempDir } from '@outpost/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { auditMiddleware } from '../../src/audit/middleware.js';
import { AuditStore } from '../../src/audit/store.js';

let http: Listening | undefined;
let db: Database | undefined;
let dir: string | undefined;
afterEach(async () => {
  await http?.close();
  if (db?.status === 'open') await db.close();
  if (dir) await removeDir(dir);
  http = db = dir = undefined;
});

describe('audit middleware', () => {
  it('withholds the answer (500 CORE_AUDIT_UNAVAILABLE) when the entry cannot be written, and records before answering otherwise', async () => {
    dir = await tempDir('outpost-audit-mw-');
    db = await openDatabase(dir);
    const store = new AuditStore(db);
    await store.load();
    const counters = { written: 0, appendFailures: 0 };
    const { app, router } = createHttpApp({ logger: silentLogger() });
    router.use(auditMiddleware({ store: () => store, maxFieldBytes: 4096, clock: { now: () => Date.now() }, log: silentLogger(), counters }));
    const applied: string[] = [];
    // An administrator's change (the principal is set as authentication would).
    router.post('/api/v1/things', publicRoute(), async (ctx) => {
      ctx.state.principal = { kind: 'admin', id: 'admin', admin: { name: 'admin', roles: ['owner'], permissions: new Set(), via: 'bootstrap', credential: 'admin-token' } };
      const body = await readJson(ctx, z.object({ name: z.string() }).strict());
      applied.push(body.name);
      ctx.status = 201;
      ctx.body = { name: body.name };
    });
    mountRouter(app, router);
    http = await listenHttp(app, { host: '127.0.0.1', port: 0 });
    const post = (name: string) => fetch(`${http!.url}/api/v1/things`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name }) });

    const ok = await post('one');
    expect(ok.status).toBe(201);
    // Acknowledged means recorded: the entry is on disk when the answer arrives.
    expect(store.head.seq).toBe(1);
    expect((await store.get(1))?.request).toEqual({ name: 'one' });

    await db.close();
    const refused = await post('two');
    expect(refused.status).toBe(500);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('CORE_AUDIT_UNAVAILABLE');
    expect(applied).toEqual(['one', 'two']);
    expect(counters).toEqual({ written: 1, appendFailures: 1 });
  });
});
