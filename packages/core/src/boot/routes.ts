import type { Router } from '@koa/router';
import { can, scopeOf } from '../admins/guard.js';
import { agentInScope, agentVisible, unscopedOnly } from '../admins/scope.js';
import { OutpostError, readJson, validate, z, type AppState, type RouteContext } from '@outpost/common';
import type { Registry } from '../registry.js';
import { BootErrors } from './errors.js';
import type { BootImageRecord, BootRecord, ComputerRecord } from './model.js';
import type { BootService } from './service.js';

const mac = z.string().regex(/^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/, 'a MAC address like 52:54:00:12:34:56');
const uuid = z.string().regex(/^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$/, 'a UUID');
const name = z.string().min(1).max(200);
const relPath = z.string().min(1).max(1024).refine((p) => !p.startsWith('/') && !p.split('/').some((s) => s === '..' || s === '.' || s === ''), 'a relative path inside the package');

const computerBody = z.strictObject({ macs: z.array(mac).default([]), uuid: uuid.optional(), name: name.optional(), image: name, job: name.optional() }).refine((b) => b.macs.length > 0 || b.uuid !== undefined, 'give at least one MAC or a UUID');
const imageBody = z.strictObject({ name, package: name, script: relPath.optional(), kernel: relPath.optional(), initrd: z.array(relPath).optional(), cmdline: z.string().max(2000).optional(), description: z.string().max(500).optional() }).refine((b) => b.script !== undefined || b.kernel !== undefined, 'give a script or a kernel');
const automationBody = z.strictObject({ agent: z.string().optional(), mac: mac.optional(), computer: z.string().optional(), image: name, job: name.optional() });
const bindBody = z.strictObject({ agent: z.string().min(1).max(200).nullable() });
const decideBody = z.strictObject({ mac, uuid: uuid.optional(), arch: z.number().int().min(0).max(65535).optional(), consume: z.boolean().default(false) });
const eventTypes = ['discover', 'offer', 'request', 'ack', 'pxe-request', 'pxe-ack', 'tftp-start', 'tftp-done', 'tftp-failed', 'http', 'script', 'handoff', 'other-proxy', 'queued'] as const;
const eventsBody = z.strictObject({
  items: z
    .array(
      z.strictObject({
        mac,
        at: z.number().int().min(0),
        type: z.enum(eventTypes),
        uuid: uuid.optional(),
        arch: z.number().int().min(0).max(65535).optional(),
        ip: z.string().max(64).optional(),
        detail: z.record(z.string(), z.union([z.string().max(1024), z.number(), z.boolean()])).optional(),
        /** The netboot server's boot id (its log lines of this boot carry it). */
        boot: z.string().regex(/^[\w.:-]{1,64}$/).optional(),
      }),
    )
    .max(5000),
});
const bootsQuery = z.object({ mac: mac.optional(), computer: z.string().optional(), limit: z.coerce.number().int().min(1).max(10_000).default(50) });

const iso = (t: number | undefined): string | undefined => (t === undefined ? undefined : new Date(t).toISOString());
export const computerView = (c: ComputerRecord): Record<string, unknown> => ({
  ...c,
  once: c.once ? { ...c.once, requestedAt: iso(c.once.requestedAt) } : undefined,
  pendingJob: c.pendingJob ? { ...c.pendingJob, at: iso(c.pendingJob.at) } : undefined,
  lastJob: c.lastJob ? { ...c.lastJob, at: iso(c.lastJob.at) } : undefined,
  createdAt: iso(c.createdAt),
  updatedAt: iso(c.updatedAt),
  lastBootAt: iso(c.lastBootAt),
  observedBootAt: iso(c.observedBootAt),
});
/**
 * A job named for a computer may be defined later (it is looked up when the machine's
 * agent enrolls), so an unknown one is a warning, not a refusal: a typo shows at once.
 */
async function jobWarnings(svc: BootService, job: string): Promise<{ warnings?: string[] }> {
  if (!svc.jobs) return { warnings: [`this core runs no tasks module: job '${job}' will not start`] };
  try {
    await svc.jobs.check(job);
    return {};
  } catch (err) {
    return { warnings: [`${(err as Error).message}: define it before the machine's agent enrolls, or the job will not start`] };
  }
}
const imageView = (i: BootImageRecord): Record<string, unknown> => ({ ...i, createdAt: iso(i.createdAt) });
const bootView = (b: BootRecord): Record<string, unknown> => ({ ...b, startedAt: iso(b.startedAt), lastAt: iso(b.lastAt), durationMs: b.lastAt - b.startedAt, events: b.events.map((e) => ({ ...e, at: iso(e.at), offsetMs: e.at - b.startedAt })) });

/** The calling site server, which must run the netboot service (admins pass too). */
function netbootServer(ctx: RouteContext, registry: Registry): string {
  const p = ctx.state.principal!;
  if (p.kind === 'admin') return 'admin';
  const ss = registry.store.siteServers.get(p.id);
  if (!ss || !registry.runsGranted(ss.id, 'netboot')) throw new OutpostError(BootErrors.NOT_A_NETBOOT_SERVER, 'this site server does not run the netboot service', { status: 403 });
  return ss.name;
}

/** Admin routes (computers, images, boots) and netboot-server routes (decide, events, image info). */
export function bootRoutes(router: Router<AppState>, svc: BootService, registry: Registry): void {
  // Scopes: a computer belongs to the sites of the agent bound to it (none: no site).
  const computerVisible = (ctx: RouteContext, c: ComputerRecord): boolean => scopeOf(ctx) === undefined || (c.agentId !== undefined && agentVisible(ctx, registry, c.agentId));
  const scopedComputer = (ctx: RouteContext, ref: string): ComputerRecord => {
    const c = svc.computer(ref);
    if (!computerVisible(ctx, c)) throw new OutpostError(BootErrors.COMPUTER_NOT_FOUND, `no computer '${ref}'`, { status: 404 });
    return c;
  };
  const bootVisible = (ctx: RouteContext, b: BootRecord): boolean => {
    if (scopeOf(ctx) === undefined) return true;
    const c = b.computerId !== undefined ? svc.store.computers.get(b.computerId) : undefined;
    return c !== undefined && computerVisible(ctx, c);
  };


  router.get('/api/v1/boot/computers', can('boot.read'), (ctx) => {
    ctx.body = { items: [...svc.store.computers.values()].filter((c) => computerVisible(ctx, c)).sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id)).map(computerView) };
  });
  router.post('/api/v1/boot/computers', can('boot.write'), async (ctx) => {
    unscopedOnly(ctx, 'boot.write', 'adding a computer (it belongs to no site until an agent runs on it)');
    const body = await readJson(ctx, computerBody);
    const { computer, created } = await svc.addComputer(body);
    ctx.status = created ? 201 : 200;
    ctx.body = { ...computerView(computer), ...(body.job ? await jobWarnings(svc, body.job) : {}) };
  });
  router.get('/api/v1/boot/computers/:ref', can('boot.read'), (ctx) => {
    ctx.body = computerView(scopedComputer(ctx, ctx.params.ref!));
  });
  router.delete('/api/v1/boot/computers/:ref', can('boot.write'), async (ctx) => {
    const before = computerView(scopedComputer(ctx, ctx.params.ref!));
    ctx.state.audit = { object: `computer:${before.id}`, before };
    await svc.deleteComputer(ctx.params.ref!);
    ctx.status = 204;
  });
  // Binding a computer to its agent: an admin's word (or an observed boot, see agentEnrolled).
  router.put('/api/v1/boot/computers/:ref/agent', can('boot.act'), async (ctx) => {
    const before = computerView(scopedComputer(ctx, ctx.params.ref!));
    const { agent } = await readJson(ctx, bindBody);
    if (agent !== null) agentInScope(ctx, registry, agent);
    ctx.state.audit = { object: `computer:${before.id}`, before };
    const p = ctx.state.principal!;
    ctx.body = computerView(await svc.bind(ctx.params.ref!, agent, `${p.kind}:${p.id}`));
  });
  // Reboot to automation: admins for any computer, an agent for the computer bound to it.
  router.post('/api/v1/boot/automation', can('boot.act', { kinds: ['agent'] }), async (ctx) => {
    const body = await readJson(ctx, automationBody);
    const p = ctx.state.principal!;
    if (p.kind === 'agent' && ((body.agent ?? p.id) !== p.id || body.mac !== undefined || body.computer !== undefined)) {
      ctx.state.log.warn({ principal: p.id, kind: p.kind, agent: body.agent, mac: body.mac, computer: body.computer }, 'reboot to automation refused: an agent may only ask for itself');
      throw new OutpostError('COMMON_FORBIDDEN', 'an agent may only ask for itself', { status: 403 });
    }
    if (p.kind === 'admin' && scopeOf(ctx)) {
      // Whatever names the computer (agent, MAC or computer id), it must be one the scope sees.
      if (body.agent !== undefined) agentInScope(ctx, registry, body.agent);
      if (body.computer !== undefined) scopedComputer(ctx, body.computer);
      if (body.mac !== undefined) scopedComputer(ctx, body.mac);
    }
    const input = p.kind === 'agent' ? { agent: p.id, image: body.image, job: body.job } : body;
    ctx.body = computerView(await svc.automation(input, `${p.kind}:${p.id}`));
  });

  router.get('/api/v1/boot/images', can('boot.read', { kinds: ['site-server'] }), (ctx) => {
    ctx.body = { items: [...svc.store.images.values()].sort((a, b) => a.name.localeCompare(b.name)).map(imageView) };
  });
  router.post('/api/v1/boot/images', can('boot.write'), async (ctx) => {
    ctx.status = 201;
    ctx.body = imageView(await svc.addImage(await readJson(ctx, imageBody)));
  });
  router.get('/api/v1/boot/images/:name', can('boot.read', { kinds: ['site-server'] }), async (ctx) => {
    netbootServer(ctx, registry);
    const img = svc.image(ctx.params.name!);
    const pkg = await svc.packageOf(img.package);
    ctx.body = { ...imageView(img), packageInfo: pkg ?? null };
  });
  router.delete('/api/v1/boot/images/:name', can('boot.write'), async (ctx) => {
    await svc.deleteImage(ctx.params.name!);
    ctx.status = 204;
  });

  router.post('/api/v1/boot/decide', can('boot.act', { kinds: ['site-server'] }), async (ctx) => {
    netbootServer(ctx, registry);
    ctx.body = await svc.decide(await readJson(ctx, decideBody));
  });
  router.post('/api/v1/boot/events', can('boot.act', { kinds: ['site-server'] }), async (ctx) => {
    const server = netbootServer(ctx, registry);
    const { items } = await readJson(ctx, eventsBody);
    ctx.body = await svc.recordEvents(server, items);
  });

  router.get('/api/v1/boot/boots', can('boot.read'), (ctx) => {
    const q = validate(bootsQuery, ctx.query, 'query');
    ctx.body = { items: svc.boots({ ...q, ...(scopeOf(ctx) ? { visible: (b: BootRecord) => bootVisible(ctx, b) } : {}) }).map(bootView) };
  });
  router.get('/api/v1/boot/boots/:id', can('boot.read'), (ctx) => {
    const b = svc.boot(ctx.params.id!);
    if (!bootVisible(ctx, b)) throw new OutpostError(BootErrors.BOOT_NOT_FOUND, `no boot '${ctx.params.id}'`, { status: 404 });
    ctx.body = bootView(b);
  });
}
