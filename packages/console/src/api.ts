// The admin token lives in sessionStorage: it survives a reload of this tab, is gone
// when the tab closes, and is never sent by the browser on its own (no cookie, so no
// cross-site request can use it). Every call carries it as a bearer header.

const KEY = 'outpost.adminToken';
const listeners = new Set<() => void>();

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function getToken(): string | null {
  return sessionStorage.getItem(KEY);
}

export function setToken(token: string): void {
  sessionStorage.setItem(KEY, token);
  for (const l of listeners) l();
}

/** Forgets the token (sign out, or the core refused it). */
export function clearToken(reason?: string): void {
  sessionStorage.removeItem(KEY);
  if (reason) sessionStorage.setItem(`${KEY}.reason`, reason);
  for (const l of listeners) l();
}

/** Why the last session ended (once). */
export function takeSignOutReason(): string | undefined {
  const r = sessionStorage.getItem(`${KEY}.reason`) ?? undefined;
  sessionStorage.removeItem(`${KEY}.reason`);
  return r;
}

export function onAuthChange(fn: () => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export const authHeader = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

/** Calls `/api/v1<path>` with the admin token; throws {@link ApiError} on a non-2xx answer. */
export async function api<T>(path: string, init: { method?: string; body?: unknown; signal?: AbortSignal; token?: string } = {}): Promise<T> {
  const token = init.token ?? getToken();
  if (!token) throw new ApiError(401, 'COMMON_UNAUTHORIZED', 'not signed in');
  const res = await fetch(`/api/v1${path}`, {
    method: init.method ?? 'GET',
    headers: { ...authHeader(token), ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    ...(init.signal ? { signal: init.signal } : {}),
    cache: 'no-store',
  });
  const text = await res.text();
  let data: unknown;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  if (!res.ok) {
    const err = (data as { error?: { code?: string; message?: string } } | undefined)?.error;
    if (res.status === 401 && init.token === undefined) clearToken('The core no longer accepts that token: sign in again.');
    throw new ApiError(res.status, err?.code ?? `HTTP_${res.status}`, err?.message ?? `${res.status} ${res.statusText}`);
  }
  return data as T;
}

export const enc = encodeURIComponent;
