import type { Router } from '@koa/router';
import { can, scopeOf } from '../admins/guard.js';
import { OutpostError, publicRoute, type AppState, type RouteContext } from '@outpost/common';
import { CONSOLE_CSP, type Asset, type ConsoleAssets } from './assets.js';
import { ConsoleErrors } from './errors.js';
import type { LiveFeed } from './live.js';
import type { LiveSnapshot } from './snapshot.js';

const IMMUTABLE = 'public, max-age=31536000, immutable';

function send(ctx: RouteContext, a: Asset, cacheControl: string): void {
  ctx.set('cache-control', cacheControl);
  ctx.set('etag', a.etag);
  ctx.set('x-content-type-options', 'nosniff');
  ctx.vary('accept-encoding');
  if (ctx.get('if-none-match') === a.etag) {
    ctx.status = 304;
    return;
  }
  ctx.type = a.type;
  if (a.gzip && ctx.acceptsEncodings('gzip', 'identity') === 'gzip') {
    ctx.set('content-encoding', 'gzip');
    ctx.body = a.gzip;
  } else {
    ctx.body = a.body;
  }
}

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>Outpost console</title>
<h1>The console is not built</h1><p>Run <code>npm run build -w @outpost/console</code> (or <code>npm run build</code> from the repository root) and restart.</p>`;

/**
 * The console's files, without a credential (they hold no data): `index.html` with
 * `no-cache` and the CSP, hashed `assets/*` as immutable for a year.
 */
export function consoleStaticRoutes(router: Router<AppState>, assets: () => ConsoleAssets | undefined): void {
  const index = (ctx: RouteContext): void => {
    const a = assets();
    ctx.set('content-security-policy', CONSOLE_CSP);
    ctx.set('referrer-policy', 'no-referrer');
    ctx.set('x-frame-options', 'DENY');
    if (!a) {
      ctx.status = 503;
      ctx.set('cache-control', 'no-store');
      ctx.type = 'text/html; charset=utf-8';
      ctx.body = NOT_BUILT;
      return;
    }
    send(ctx, a.index, 'no-cache');
  };
  router.get('/', publicRoute(), (ctx) => ctx.redirect('/console/'));
  // The router matches `/console` and `/console/` alike: only the bare one redirects.
  router.get('/console', publicRoute(), (ctx) => (ctx.path === '/console' ? ctx.redirect('/console/') : index(ctx)));
  router.get('/console/index.html', publicRoute(), index);
  router.get('/console/assets/*path', publicRoute(), (ctx) => {
    const path = ctx.params.path;
    const file = typeof path === 'string' ? assets()?.files.get(path) : undefined;
    if (!file) {
      ctx.status = 404;
      ctx.set('cache-control', 'no-store');
      ctx.body = { error: { code: 'COMMON_NOT_FOUND', message: `no console asset ${ctx.path}` } };
      return;
    }
    send(ctx, file, IMMUTABLE);
  });
}

/** The live feed (server-sent events) and a one-shot snapshot, for the admin. */
export function consoleApiRoutes(
  router: Router<AppState>,
  feed: LiveFeed<LiveSnapshot>,
  snapshot: () => LiveSnapshot,
  maxClients: number,
  /** A site-scoped administrator's view of a snapshot. */
  scoped: (snap: LiveSnapshot, scope: readonly string[]) => LiveSnapshot,
): void {
  router.get('/api/v1/console/snapshot', can('console.read'), (ctx) => {
    ctx.set('cache-control', 'no-store');
    const scope = scopeOf(ctx);
    ctx.body = scope ? scoped(snapshot(), scope) : snapshot();
  });
  router.get('/api/v1/console/events', can('console.read'), (ctx) => {
    if (feed.clients >= maxClients) {
      throw new OutpostError(ConsoleErrors.TOO_MANY_CLIENTS, `${maxClients} live feeds are open already`, { status: 503 });
    }
    ctx.req.socket.setTimeout(0);
    ctx.respond = false;
    const scope = scopeOf(ctx);
    feed.add(ctx.res, scope ? (snap) => scoped(snap, scope) : undefined);
  });
}
