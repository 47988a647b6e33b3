import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api } from '../api';
import { signIn } from '../session';

/** A refusal as the sign-in page shows it: words for a person, and the core's code. */
interface Problem {
  text: string;
  code?: string;
}

const SSO_ERRORS: Record<string, string> = {
  CORE_SSO_FAILED: 'The single sign-on provider’s answer was refused (it expired, was not for this sign-in, or names a local administrator).',
  CORE_SSO_NO_ROLE: 'You signed in at the provider, but none of your groups gives a role in Outpost. Ask an owner to map one of your groups.',
  CORE_SSO_NOT_CONFIGURED: 'Single sign-on is not configured on this core.',
  CORE_SSO_UNAVAILABLE: 'The core cannot reach the single sign-on provider yet. Try again in a minute.',
  CORE_SIGN_IN_LOCKED: 'Too many sign-ins from this address. Try again in a minute.',
};

/** The words for a refused sign-in. */
function signInProblem(err: unknown, mode: 'password' | 'token', now = Date.now()): Problem {
  if (!(err instanceof ApiError)) return { text: `Cannot reach the core: ${(err as Error).message}` };
  switch (err.code) {
    case 'CORE_SIGN_IN_FAILED':
      return { text: mode === 'token' ? 'The core does not accept that token.' : 'Wrong name or password.', code: err.code };
    case 'CORE_SIGN_IN_LOCKED': {
      const s = Number(err.details?.retryAfterS);
      const when = Number.isFinite(s) ? ` Try again in ${waitText(s)} (at ${new Date(now + s * 1000).toLocaleTimeString()}).` : ' Try again later.';
      return { text: `Too many failed sign-ins: this account is locked.${when}`, code: err.code };
    }
    case 'CORE_CREDENTIAL_EXPIRED':
      return { text: `That token has expired: ${err.message}`, code: err.code };
    default:
      return { text: err.status === 401 ? 'The core does not accept that.' : err.message, code: err.code };
  }
}

function waitText(s: number): string {
  if (s < 120) return `${Math.ceil(s)} s`;
  return `${Math.ceil(s / 60)} min`;
}

/** `/console/?sso_error=CODE` (the single sign-on callback's failure), taken off the address once read. */
function takeSsoError(): Problem | undefined {
  const params = new URLSearchParams(location.search);
  const code = params.get('sso_error');
  if (!code) return undefined;
  params.delete('sso_error');
  history.replaceState(null, '', `${location.pathname}${params.size ? `?${params}` : ''}${location.hash}`);
  const safe = /^[A-Z0-9_]{1,64}$/.test(code) ? code : 'UNKNOWN';
  return { text: `Single sign-on failed. ${SSO_ERRORS[safe] ?? 'The provider or the core refused the sign-in.'}`, code: safe };
}

export function SignIn(props: { reason?: string }): JSX.Element {
  const [mode, setMode] = useState<'password' | 'token'>('password');
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [token, setToken] = useState('');
  const [problem, setProblem] = useState<Problem | undefined>(() => takeSsoError() ?? (props.reason ? { text: props.reason } : undefined));
  const [busy, setBusy] = useState(false);
  const [sso, setSso] = useState<{ enabled: boolean; label?: string } | undefined>();
  useEffect(() => {
    api<{ enabled: boolean; label?: string }>('/session/sso', { quiet401: true }).then(setSso, () => setSso(undefined));
  }, []);
  const ready = mode === 'password' ? name.trim() !== '' && password !== '' : token.trim() !== '';
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (!ready) return;
    setBusy(true);
    setProblem(undefined);
    try {
      await signIn(mode === 'password' ? { name: name.trim(), password } : { token: token.trim() });
    } catch (err) {
      setProblem(signInProblem(err, mode));
      setPassword('');
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <div class="card signin-card">
        <h1>Outpost</h1>
        <form class="signin-form" aria-label="Sign in" onSubmit={(e) => void submit(e)}>
          {mode === 'password' ? (
            <>
              <label for="name">Name</label>
              <input id="name" name="username" autocomplete="username" spellcheck={false} value={name} onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)} autofocus />
              <label for="password">Password</label>
              <input id="password" name="password" type="password" autocomplete="current-password" value={password} onInput={(e) => setPassword((e.currentTarget as HTMLInputElement).value)} />
            </>
          ) : (
            <>
              <p class="hint">
                An administrator API token (<code>at_…</code>), or the owner’s bootstrap token: <code>&lt;core dataDir&gt;/admin-token</code> (with <code>npm start</code>, <code>var/core/admin-token</code>).
              </p>
              <label for="token">API token</label>
              <input id="token" name="token" type="password" autocomplete="off" spellcheck={false} value={token} onInput={(e) => setToken((e.currentTarget as HTMLInputElement).value)} placeholder="admin.… or at_…" autofocus />
            </>
          )}
          {problem && (
            <p class="error" role="alert">
              {problem.text} {problem.code && <code class="small">{problem.code}</code>}
            </p>
          )}
          <button type="submit" disabled={busy || !ready}>
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
        </form>
        <button
          type="button"
          class="link"
          onClick={() => {
            setMode(mode === 'password' ? 'token' : 'password');
            setProblem(undefined);
          }}
        >
          {mode === 'password' ? 'Sign in with an API token' : 'Sign in with a name and password'}
        </button>
        {sso?.enabled && (
          <button type="button" class="secondary" onClick={() => location.assign('/api/v1/session/sso/start')}>
            Sign in with {sso.label ?? 'single sign-on'}
          </button>
        )}
        <p class="hint">The core keeps you signed in with an HttpOnly cookie this page cannot read; it ends when idle, and at the latest hours after sign-in.</p>
      </div>
    </main>
  );
}
