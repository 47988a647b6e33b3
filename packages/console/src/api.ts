// Every call goes to the core's own origin with its HttpOnly session cookie
// (`outpost_session`, SameSite=Strict): the console never holds a credential itself —
// nothing in sessionStorage or localStorage, no Authorization header — so a script
// injected into the page has no token to read or carry elsewhere. A 401 ends the
// console's session (see session.ts) with the core's reason.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

type Unauthorized = (err: ApiError) => void;
let onUnauthorized: Unauthorized = () => undefined;

/** What a 401 on an ordinary call does (the session module signs the tab out). */
export function setUnauthorizedHandler(fn: Unauthorized): void {
  onUnauthorized = fn;
}

/** The error an answer carries (`{ error: { code, message, details? } }`), or one made from its status. */
export async function errorOf(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  let err: { code?: string; message?: string; details?: Record<string, unknown> } | undefined;
  try {
    err = text ? (JSON.parse(text) as { error?: typeof err }).error : undefined;
  } catch {
    err = undefined;
  }
  return new ApiError(res.status, err?.code ?? `HTTP_${res.status}`, err?.message ?? `${res.status} ${res.statusText}`, err?.details);
}

/**
 * Calls `/api/v1<path>` with the session cookie; throws {@link ApiError} on a non-2xx
 * answer. `quiet401`: a 401 is only thrown (sign-in, who-am-I), not a sign-out.
 */
export async function api<T>(path: string, init: { method?: string; body?: unknown; signal?: AbortSignal; quiet401?: boolean } = {}): Promise<T> {
  const res = await fetch(`/api/v1${path}`, {
    method: init.method ?? 'GET',
    credentials: 'same-origin',
    headers: init.body === undefined ? {} : { 'content-type': 'application/json' },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    ...(init.signal ? { signal: init.signal } : {}),
    cache: 'no-store',
  });
  if (!res.ok) {
    const err = await errorOf(res);
    if (res.status === 401 && !init.quiet401) onUnauthorized(err);
    throw err;
  }
  const text = await res.text();
  try {
    return (text ? JSON.parse(text) : undefined) as T;
  } catch {
    return undefined as T;
  }
}

export const enc = encodeURIComponent;
