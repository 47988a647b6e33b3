import { open, stat } from 'node:fs/promises';
import { can } from '../admins/guard.js';
import type { Router } from '@koa/router';
import { BufferPool, CommonErrors, FileReadError, OutpostError, parseRange, sendFileRange, readJson, requireKind, validate, z, type AppState, type RouteContext } from '@outpost/common';
import { PackageErrors } from './errors.js';
import { fileEntrySchema, NAME_RE } from './manifest.js';
import { stageable } from './model.js';
import type { PackageService } from './service.js';
import type { Registry } from '../registry.js';

/** Who besides an admin may read a package that is not enabled: a netboot service, for a boot image's package. */
export interface PackageReaders {
  registry: Pick<Registry, 'runsGranted'>;
  bootsFrom(pkg: { id: string; name: string; version: string }): boolean;
}

const name = z.string().regex(NAME_RE, 'letters, digits and . _ + - (at most 128, starting with a letter or digit)');
const createBody = z.object({ name, version: name.optional(), files: z.array(fileEntrySchema).max(1_000_000) }).strict();
const enableBody = z
  .object({
    servers: z.array(z.string().min(1).max(128)).max(10_000).optional(),
    site: z.string().min(1).max(128).optional(),
    maxServers: z.number().int().min(0).max(100_000).optional(),
  })
  .strict()
  .refine((b) => !(b.servers?.length && b.site !== undefined), 'give servers or site, not both');
const reportBody = z
  .object({
    items: z
      .array(
        z
          .object({
            id: z.string().min(1).max(64),
            manifestHash: z.string().max(64),
            state: z.enum(['pending', 'downloading', 'ready', 'failed']),
            bytesDone: z.number().int().min(0),
            bytesTotal: z.number().int().min(0),
            error: z.string().max(2000).optional(),
            nextRetryAt: z.number().int().min(0).optional(),
            attempt: z.number().int().min(0).optional(),
          })
          .strict(),
      )
      .max(100_000),
  })
  .strict();
const downloadBody = z
  .object({
    state: z.enum(['ok', 'failed']),
    codebase: z.string().max(2048).optional(),
    error: z.string().max(2000).optional(),
    bytes: z.number().int().min(0).optional(),
  })
  .strict();
const offsetQuery = z.object({ offset: z.coerce.number().int().min(0).default(0) }).strict();
const codebaseQuery = z.object({ agent: z.string().min(1).max(128).optional() }).strict();
const listQuery = z.object({ name: z.string().max(128).optional() }).strict();

const forbidden = (why: string): OutpostError => new OutpostError(CommonErrors.FORBIDDEN, why, { status: 403 });

function filePath(ctx: RouteContext): string {
  const p = ctx.params.path;
  const joined = Array.isArray(p) ? p.join('/') : (p ?? '');
  if (joined === '') throw new OutpostError(PackageErrors.FILE_NOT_FOUND, 'no file path given', { status: 404 });
  return joined;
}

/** The packages API; see the core README, "Packages". */
export function packageRoutes(router: Router<AppState>, svc: PackageService, serveAgents: boolean, readers?: PackageReaders): void {
  const pool = new BufferPool(1 << 20, 32 << 20);
  const siteServer = requireKind('site-server');

  router.post('/api/v1/packages', can('packages.write'), async (ctx) => {
    const body = await readJson(ctx, createBody);
    const { pkg, created } = await svc.create(body);
    ctx.status = created ? 201 : 200;
    ctx.body = await svc.view(pkg);
  });
  router.get('/api/v1/packages', can('packages.read'), (ctx) => {
    const q = validate(listQuery, ctx.query, 'query');
    const items = [...svc.store.packages.values()]
      .filter((p) => q.name === undefined || p.name === q.name)
      .sort((a, b) => a.name.localeCompare(b.name) || a.createdAt - b.createdAt)
      .map((p) => svc.summary(p));
    ctx.body = { items };
  });
  router.get('/api/v1/packages/:ref', can('packages.read'), async (ctx) => {
    ctx.body = await svc.view(svc.resolve(ctx.params.ref!));
  });
  router.get('/api/v1/packages/:ref/manifest', can('packages.read', { kinds: ['agent', 'site-server'] }), async (ctx) => {
    const kind = ctx.state.principal?.kind;
    const pkg = svc.resolve(ctx.params.ref!);
    if (kind !== 'admin' && (!stageable(pkg) || !pkg.enabled)) throw new OutpostError(PackageErrors.NOT_FOUND, `no package '${ctx.params.ref}'`, { status: 404 });
    ctx.body = { id: pkg.id, name: pkg.name, version: pkg.version, manifestHash: pkg.manifestHash, files: pkg.files };
  });
  router.put('/api/v1/packages/:ref/files/*path', can('packages.write'), async (ctx) => {
    const pkg = svc.resolve(ctx.params.ref!);
    const { offset } = validate(offsetQuery, ctx.query, 'query');
    const lengthHeader = ctx.get('content-length');
    const length = lengthHeader === '' ? undefined : Number(lengthHeader);
    ctx.body = { path: filePath(ctx), ...(await svc.upload(pkg, filePath(ctx), offset, ctx.req, Number.isFinite(length) ? length : undefined)) };
  });
  router.get('/api/v1/packages/:ref/files/*path', can('packages.read', { kinds: ['agent', 'site-server'] }), async (ctx) => {
    const kind = ctx.state.principal?.kind;
    if (kind === 'agent' && !serveAgents) throw forbidden('this core does not serve package files to agents');
    const pkg = svc.resolve(ctx.params.ref!);
    const bootImageRead = kind === 'site-server' && pkg.state === 'ready' && readers !== undefined && readers.registry.runsGranted(ctx.state.principal!.id, 'netboot') && readers.bootsFrom(pkg);
    if (kind !== 'admin' && !bootImageRead && (!pkg.enabled || pkg.state !== 'ready')) {
      // A disabled package is withdrawn: only an admin (checking or re-enabling it), or a
      // netboot service reading the package of a boot image, reads its files.
      ctx.state.log.warn({ event: 'package-file-refused', package: pkg.id, principal: ctx.state.principal?.id, kind }, 'file of a disabled package refused');
      throw new OutpostError(PackageErrors.DISABLED, `package '${ctx.params.ref}' is disabled: its files are served to admins only`, { status: 403 });
    }
    const file = svc.fileOf(pkg, filePath(ctx));
    if (!(await svc.content.knows(file.sha256))) throw new OutpostError(PackageErrors.CONTENT_MISSING, `the file '${file.path}' is not in the store yet`, { status: 404 });
    const path = svc.content.pathOf(file.sha256);
    const st = await stat(path).catch(() => undefined);
    if (!st?.isFile() || st.size !== file.size) {
      await svc.contentLost(file.sha256);
      throw new OutpostError(PackageErrors.CONTENT_MISSING, `the file '${file.path}' is missing or damaged in the store`, { status: 404 });
    }
    const etag = `"${file.sha256}"`;
    ctx.set('etag', etag);
    ctx.set('accept-ranges', 'bytes');
    ctx.type = 'application/octet-stream';
    if (ctx.get('if-none-match').split(/\s*,\s*/).includes(etag)) {
      ctx.status = 304;
      return;
    }
    const range = parseRange(ctx.get('range') || undefined, file.size);
    if (range.kind === 'unsatisfiable') {
      ctx.set('content-range', `bytes */${file.size}`);
      throw new OutpostError(PackageErrors.RANGE_NOT_SATISFIABLE, `range not satisfiable for a file of ${file.size} bytes`, { status: 416 });
    }
    const principal = ctx.state.principal?.id ?? '?';
    const { start, end } = range.kind === 'range' ? range : { start: 0, end: file.size - 1 };
    if (range.kind === 'range') {
      ctx.status = 206;
      ctx.set('content-range', `bytes ${range.start}-${range.end}/${file.size}`);
    } else ctx.status = 200;
    ctx.length = Math.max(0, end - start + 1);
    if (ctx.method === 'HEAD') return;
    if (ctx.length === 0) {
      ctx.body = '';
      return;
    }
    // Sent with the package server's loop over pooled buffers (read ahead while the socket
    // takes a chunk) rather than a read stream, whose fresh 1 MiB buffer per chunk kept
    // V8's major collector busy while package servers staged from the core.
    const fh = await open(path, 'r');
    ctx.respond = false;
    let sent = 0;
    try {
      sent = await sendFileRange(fh, ctx.res, start, end, pool);
    } catch (err) {
      // A read failed mid-answer: the headers are out, so cut it off (what was sent still counts).
      if (err instanceof FileReadError) sent = err.bytesSent;
      ctx.res.destroy(err as Error);
    } finally {
      await fh.close().catch(() => undefined);
      svc.counters.servedBytes += sent;
      svc.counters.servedByPrincipal[principal] = (svc.counters.servedByPrincipal[principal] ?? 0) + sent;
    }
  });
  router.post('/api/v1/packages/:ref/enable', can('packages.enable'), async (ctx) => {
    const body = await readJson(ctx, enableBody);
    const { pkg, warnings } = await svc.enable(ctx.params.ref!, body);
    ctx.body = { ...(await svc.view(pkg)), ...(warnings.length ? { warnings } : {}) };
  });
  router.post('/api/v1/packages/:ref/disable', can('packages.enable'), async (ctx) => {
    ctx.body = await svc.view(await svc.disable(ctx.params.ref!));
  });
  router.delete('/api/v1/packages/:ref', can('packages.write'), async (ctx) => {
    ctx.body = await svc.delete(ctx.params.ref!);
  });
  router.get('/api/v1/packages/:ref/codebases', can('packages.read', { kinds: ['agent'] }), async (ctx) => {
    const { agent } = validate(codebaseQuery, ctx.query, 'query');
    const p = ctx.state.principal;
    if (p?.kind === 'agent' && agent !== undefined && agent !== p.id) throw forbidden('an agent may only ask for its own codebases');
    if (p?.kind !== 'admin' && p?.kind !== 'agent') throw forbidden('this call needs an admin or agent credential');
    const pkg = svc.resolve(ctx.params.ref!);
    // A package from upstream has codebases (its package servers') before this core holds its content.
    if (!stageable(pkg) || (!pkg.enabled && p.kind === 'agent')) {
      ctx.body = { id: pkg.id, manifestHash: pkg.manifestHash, items: [] };
      return;
    }
    ctx.body = { id: pkg.id, manifestHash: pkg.manifestHash, items: svc.codebases(pkg, agent ?? (p.kind === 'agent' ? p.id : undefined)) };
  });
  router.post('/api/v1/packages/:ref/downloads', requireKind('agent'), async (ctx) => {
    const body = await readJson(ctx, downloadBody);
    const pkg = svc.resolve(ctx.params.ref!);
    await svc.recordDownload({ packageId: pkg.id, agentId: ctx.state.principal!.id, ...body, at: Date.now() });
    ctx.status = 204;
  });

  router.get('/api/v1/package-servers/:id/assignments', siteServer, (ctx) => {
    if (ctx.state.principal?.id !== ctx.params.id) throw forbidden('a site server may only read its own assignments');
    ctx.body = svc.assignments(ctx.params.id!);
  });
  router.post('/api/v1/package-servers/:id/status', siteServer, async (ctx) => {
    if (ctx.state.principal?.id !== ctx.params.id) throw forbidden('a site server may only report its own status');
    const body = await readJson(ctx, reportBody);
    ctx.body = await svc.report(ctx.params.id!, body.items);
  });
}
