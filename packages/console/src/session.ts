import { useEffect, useState } from 'preact/hooks';
import { ApiError, api } from './api';

/** `GET /api/v1/session`: who is signed in and what they may do. */
export interface Session {
  name: string;
  roles: string[];
  permissions: string[];
  sites?: string[];
  via: 'bootstrap' | 'token' | 'session' | 'sso';
  expiresAt?: string;
}

/** Where the console is: asking the core (`loading`), signed out (with why), or signed in. */
export type SessionState = { status: 'loading' } | { status: 'signed-out'; reason?: string } | { status: 'signed-in'; session: Session; permissions: ReadonlySet<string> };

type Listener = (s: SessionState) => void;
let state: SessionState = { status: 'loading' };
const listeners = new Set<Listener>();

function set(next: SessionState): void {
  state = next;
  for (const l of listeners) l(state);
}

/** Why a session ended, in words a person reads on the sign-in page. */
export function endReason(err: ApiError): string {
  if (err.code === 'CORE_SESSION_EXPIRED') {
    const why = /\(([^)]{1,80})\)/.exec(err.message)?.[1];
    return `Your session ended${why ? ` (${why})` : ''}. Sign in again.`;
  }
  return 'The core no longer accepts this session. Sign in again.';
}

/** A call or stream answered 401: the session is over (a second 401 racing it keeps the first reason). */
export function endSessionOn401(err: ApiError): void {
  if (state.status === 'signed-in') set({ status: 'signed-out', reason: endReason(err) });
}

/** Asks the core who this tab is (the cookie decides); signed out on a 401. */
export async function loadSession(): Promise<void> {
  try {
    const session = await api<Session>('/session', { quiet401: true });
    set({ status: 'signed-in', session, permissions: new Set(session.permissions) });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      set({ status: 'signed-out', ...(err.code === 'CORE_SESSION_EXPIRED' ? { reason: endReason(err) } : {}) });
      return;
    }
    set({ status: 'signed-out', reason: `Cannot reach the core: ${(err as Error).message}` });
  }
}

/** Signs in with a name and password, or an API token; the core sets the cookie. Throws {@link ApiError}. */
export async function signIn(body: { name: string; password: string } | { token: string }): Promise<void> {
  await api('/session', { method: 'POST', body, quiet401: true });
  await loadSession();
}

/** Ends the session on the core (its cookie is refused from now on) and here. */
export async function signOut(): Promise<void> {
  try {
    await api('/session', { method: 'DELETE', quiet401: true });
  } finally {
    set({ status: 'signed-out', reason: 'You signed out.' });
  }
}

export function useSession(): SessionState {
  const [s, setS] = useState(state);
  useEffect(() => {
    listeners.add(setS);
    setS(state);
    return () => void listeners.delete(setS);
  }, []);
  return s;
}

/** True when the signed-in administrator holds `permission` (the one its route declares). */
export function useCan(permission: string): boolean {
  const s = useSession();
  return s.status === 'signed-in' && s.permissions.has(permission);
}
