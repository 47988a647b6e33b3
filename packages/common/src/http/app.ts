import { randomUUID } from 'node:crypto';
import Koa from 'koa';
import { Router } from '@koa/router';
import type { Logger } from 'pino';
import { CommonErrors, isOutpostError } from '../errors.js';
import { DEFAULT_BODY_LIMIT } from './body.js';
import type { AppState, AppContext } from './context.js';
import { publicRoute } from './auth.js';
import type { ServiceMetrics } from '../metrics.js';

export interface HttpAppOptions {
  logger: Logger;
  /** Largest request body in bytes. @default 1 MiB */
  bodyLimit?: number;
  /** Extra fields for `GET /api/v1/health`. */
  health?: () => Record<string, unknown> | Promise<Record<string, unknown>>;
  /** Log each request at info (else debug). @default false */
  logRequests?: boolean;
  /** Count and time every request (`outpost_<service>_http_requests_total`, `..._duration_seconds`). */
  metrics?: ServiceMetrics;
}

const REQUEST_ID_RE = /^[\w.:-]{1,128}$/;

/**
 * The koa app every service builds on: request id (`x-request-id`, echoed back or made
 * up), a child logger per request, one error middleware mapping typed errors to their
 * status and `{ "error": { "code", "message" } }` (unexpected errors: logged with the
 * request id, answered 500 without internals), JSON 404/405 for unknown routes, and
 * `GET /api/v1/health` (no credential). Add routes to `router`.
 */
export function createHttpApp(options: HttpAppOptions): { app: Koa<AppState>; router: Router<AppState> } {
  const app = new Koa<AppState>({ proxy: false });
  app.context.bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  app.silent = true;
  const router = new Router<AppState>();
  const logLevel = options.logRequests ? 'info' : 'debug';
  if (options.metrics) app.use(options.metrics.httpMiddleware());

  app.use(async (ctx: AppContext, next) => {
    const incoming = ctx.get('x-request-id');
    const requestId = REQUEST_ID_RE.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId;
    ctx.set('x-request-id', requestId);
    ctx.state.log = options.logger.child({ reqId: requestId });
    const started = performance.now();
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        ctx.status = 404;
        ctx.body = { error: { code: CommonErrors.NOT_FOUND, message: `no route for ${ctx.method} ${ctx.path}` } };
      }
    } catch (err) {
      if (isOutpostError(err) && err.status < 500) {
        ctx.status = err.status;
        ctx.body = { error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) } };
        ctx.state.log.debug({ code: err.code, status: err.status }, 'request refused');
      } else if (isOutpostError(err)) {
        ctx.status = err.status;
        ctx.body = { error: { code: err.code, message: err.message } };
        ctx.state.log.error({ err }, 'request failed');
      } else {
        ctx.status = 500;
        ctx.body = { error: { code: CommonErrors.INTERNAL, message: `internal error (request id ${requestId})` } };
        ctx.state.log.error({ err }, 'unexpected error');
      }
    }
    ctx.state.log[logLevel](
      { method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round((performance.now() - started) * 100) / 100, principal: ctx.state.principal?.id },
      'request',
    );
  });

  router.get('/api/v1/health', publicRoute(), async (ctx) => {
    ctx.body = { status: 'ok', ...(options.health ? await options.health() : {}) };
  });

  return { app, router };
}

/**
 * Mounts the router (after the caller added its routes) with JSON 405 answers for a
 * known path under a wrong method.
 */
export function mountRouter(app: Koa<AppState>, router: Router<AppState>): void {
  app.use(router.routes());
  app.use(async (ctx: AppContext, next) => {
    const allowed = router.match(ctx.path, ctx.method);
    // Middleware layers (router.use) match every path but have no methods: not routes.
    const routes = allowed.path.filter((l) => l.methods.length > 0);
    if (routes.length > 0 && !allowed.route) {
      const methods = new Set(routes.flatMap((l) => l.methods));
      ctx.status = 405;
      ctx.set('allow', [...methods].join(', '));
      ctx.body = { error: { code: CommonErrors.METHOD_NOT_ALLOWED, message: `${ctx.method} is not allowed on ${ctx.path}` } };
      return;
    }
    await next();
  });
}
