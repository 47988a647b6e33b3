/** POST routes whose last segment already says what they do (`jobs.runs`, `runs.cancel`). */
export const ACTION_VERBS: ReadonlySet<string> = new Set([
  'run',
  'runs',
  'cancel',
  'enable',
  'disable',
  'clone',
  'revoke',
  'renew',
  'block',
  'unblock',
  'approve',
  'password',
  'tokens',
  'decide',
  'heartbeat',
]);

const METHOD_VERBS: Readonly<Record<string, string>> = { POST: 'create', PUT: 'put', PATCH: 'update', DELETE: 'delete', GET: 'read', HEAD: 'read' };

/**
 * The action a route stands for: the route template's segments after `/api/v1` without
 * parameters (`:name`, `*path`), joined with `.`, plus a verb from the method (POST
 * `create`, PUT `put`, PATCH `update`, DELETE `delete`, GET `read`), except a POST whose
 * last segment is one of {@link ACTION_VERBS}. `POST /api/v1/sites` → `sites.create`,
 * `POST /api/v1/runs/:id/cancel` → `runs.cancel`, `DELETE /api/v1/admins/:name` →
 * `admins.delete`.
 */
export function actionName(method: string, route: string): string {
  const path = route.startsWith('/api/v1/') ? route.slice('/api/v1/'.length) : route.replace(/^\/+/, '');
  const segments = path.split('/').filter((s) => s !== '' && !s.startsWith(':') && !s.startsWith('*'));
  const m = method.toUpperCase();
  const last = segments.at(-1);
  if (m === 'POST' && last !== undefined && ACTION_VERBS.has(last)) return segments.join('.');
  return [...segments, METHOD_VERBS[m] ?? m.toLowerCase()].join('.');
}
