import type { Router } from '@koa/router';
import { OutpostError, durationSchema, readJson, validate, z, type AppState } from '@outpost/common';
import { can } from '../admins/guard.js';
import { unscopedOnly } from '../admins/scope.js';
import { noteAudit } from '../audit/note.js';
import { HierarchyErrors } from './errors.js';
import type { HierarchyService } from './service.js';

const tokenBody = z.strictObject({ note: z.string().max(500).optional(), expires: durationSchema.pipe(z.number().min(1_000).max(30 * 86_400_000)).optional() });
const joinBody = z.strictObject({ url: z.url({ protocol: /^https$/ }), token: z.string().min(10).max(400) });
const replicateBody = z.strictObject({ full: z.boolean().default(false) });
const runBody = z
  .strictObject({
    job: z.string().min(1).max(200),
    all: z.boolean().optional(),
    cores: z.array(z.string().min(1).max(100)).min(1).max(1_000).optional(),
    site: z.string().min(1).max(200).optional(),
    expires: durationSchema.pipe(z.number().min(1_000)).optional(),
  })
  .refine((b) => [b.all === true, b.cores !== undefined, b.site !== undefined].filter(Boolean).length === 1, 'give exactly one of all, cores and site');
const id = z.string().regex(/^[\w-]{1,100}$/, 'an id');
const runQuery = z.strictObject({ agents: z.enum(['true', 'false']).default('true') });
const agentsQuery = z.object({ core: z.string().max(100).optional(), limit: z.coerce.number().int().min(1).max(100_000).default(1_000), duplicates: z.enum(['true', 'false']).optional() });

/** The hierarchy's admin API (see README.md here). */
export function hierarchyRoutes(router: Router<AppState>, svc: HierarchyService): void {
  router.get('/api/v1/hierarchy', can('hierarchy.read'), (ctx) => {
    ctx.body = svc.status();
  });
  router.post('/api/v1/hierarchy/tokens', can('hierarchy.write'), async (ctx) => {
    unscopedOnly(ctx, 'hierarchy.write', 'a join token');
    const body = await readJson(ctx, tokenBody);
    const t = await svc.createToken(body);
    noteAudit(ctx, { object: `hierarchy-token:${t.id}` });
    ctx.status = 201;
    ctx.body = t;
  });
  router.post('/api/v1/hierarchy/join', can('hierarchy.write'), async (ctx) => {
    unscopedOnly(ctx, 'hierarchy.write', 'joining a parent');
    const body = await readJson(ctx, joinBody);
    const p = await svc.join(body.url, body.token);
    noteAudit(ctx, { object: `hierarchy-parent:${p.parentId}`, after: { url: p.url, parent: p.parentId } });
    ctx.body = { parent: p.parentId, name: p.parentName, url: p.url };
  });
  router.post('/api/v1/hierarchy/leave', can('hierarchy.write'), async (ctx) => {
    unscopedOnly(ctx, 'hierarchy.write', 'leaving the parent');
    const parent = await svc.leave();
    noteAudit(ctx, { object: `hierarchy-parent:${parent}` });
    ctx.status = 204;
  });
  router.delete('/api/v1/hierarchy/children/:id', can('hierarchy.write'), async (ctx) => {
    unscopedOnly(ctx, 'hierarchy.write', 'removing a child core');
    const c = await svc.parent.remove(validate(id, ctx.params.id, 'core id'));
    noteAudit(ctx, { object: `hierarchy-child:${c.id}`, before: { name: c.name } });
    ctx.status = 204;
  });
  router.post('/api/v1/hierarchy/replicate', can('hierarchy.write'), async (ctx) => {
    const body = await readJson(ctx, replicateBody);
    ctx.body = await svc.replicateNow(body.full);
  });
  router.get('/api/v1/hierarchy/agents', can('agents.read'), async (ctx) => {
    unscopedOnly(ctx, 'agents.read', 'the agents of other cores');
    const q = validate(agentsQuery, ctx.query, 'query');
    ctx.body = await svc.agents(q.core, q.limit, q.duplicates === 'true');
  });
  router.post('/api/v1/hierarchy/runs', can('runs.start'), async (ctx) => {
    unscopedOnly(ctx, 'runs.start', 'a run on other cores');
    const body = await readJson(ctx, runBody);
    const run = await svc.startRun(body, ctx.state.principal?.id);
    noteAudit(ctx, { object: `hierarchy-run:${run.id}`, after: run });
    ctx.status = 201;
    ctx.body = run;
  });
  router.get('/api/v1/hierarchy/runs', can('runs.read'), async (ctx) => {
    unscopedOnly(ctx, 'runs.read', 'runs on other cores');
    ctx.body = { items: await svc.listRuns() };
  });
  router.get('/api/v1/hierarchy/runs/:id', can('runs.read'), async (ctx) => {
    unscopedOnly(ctx, 'runs.read', 'runs on other cores');
    const q = validate(runQuery, ctx.query, 'query');
    const view = await svc.runView(validate(id, ctx.params.id, 'run id'), q.agents === 'true');
    if (!view) throw new OutpostError(HierarchyErrors.RUN_NOT_FOUND, `no hierarchy run '${ctx.params.id}'`, { status: 404 });
    ctx.body = view;
  });
}
