import type { Router } from '@koa/router';
import { OutpostError, parseDuration, validate, z, type AppState } from '@outpost/common';
import { can } from '../admins/guard.js';
import { AuditErrors } from './errors.js';
import type { AuditStreams } from './live.js';
import type { AuditStore } from './store.js';

/** A time: ISO 8601 (`2026-01-31T12:00:00Z`, `2026-01-31`) or a duration meaning that long ago (`24h`, `7d`). */
const when = (now: () => number) =>
  z
    .string()
    .max(64)
    .transform((v, ctx) => {
      if (/^\d+(\.\d+)?(ms|s|m|h|d|w)/.test(v)) {
        try {
          return now() - parseDuration(v);
        } catch {
          // not a duration: try a date below
        }
      }
      const t = Date.parse(v);
      if (Number.isNaN(t)) {
        ctx.addIssue({ code: 'custom', message: 'an ISO 8601 time (2026-01-31T12:00:00Z) or a duration ago (24h, 7d)' });
        return z.NEVER;
      }
      return t;
    });

const queryFor = (now: () => number) =>
  z
    .object({
      since: when(now).optional(),
      until: when(now).optional(),
      admin: z.string().min(1).max(64).optional(),
      action: z.string().min(1).max(128).optional(),
      result: z.enum(['ok', 'refused', 'failed']).optional(),
      limit: z.coerce.number().int().min(1).max(1000).default(100),
      before: z.coerce.number().int().min(1).optional(),
    })
    .strict();

/** `GET /api/v1/audit`, `/audit/verify`, `/audit/stream`: all `audit.read`. */
export function auditRoutes(router: Router<AppState>, deps: { store: AuditStore; streams: AuditStreams; maxClients: number; now: () => number }): void {
  const query = queryFor(deps.now);
  router.get('/api/v1/audit', can('audit.read'), async (ctx) => {
    const q = validate(query, ctx.query, 'query');
    ctx.set('cache-control', 'no-store');
    ctx.body = await deps.store.query(q);
  });
  router.get('/api/v1/audit/verify', can('audit.read'), async (ctx) => {
    ctx.set('cache-control', 'no-store');
    ctx.body = await deps.store.verify();
  });
  router.get('/api/v1/audit/stream', can('audit.read'), (ctx) => {
    if (deps.streams.clients >= deps.maxClients) {
      throw new OutpostError(AuditErrors.TOO_MANY_CLIENTS, `${deps.maxClients} audit streams are open already`, { status: 503 });
    }
    ctx.req.socket.setTimeout(0);
    ctx.respond = false;
    deps.streams.add(ctx.res);
  });
}
