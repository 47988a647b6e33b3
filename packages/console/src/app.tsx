import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, clearToken, getToken, onAuthChange, setToken, takeSignOutReason } from './api';
import { live } from './live';
import { useRoute } from './router';
import { useLive } from './ui';
import { AgentDetail, Agents } from './pages/agents';
import { Boots } from './pages/boots';
import { Gateways } from './pages/gateways';
import { Overview } from './pages/overview';
import { PackageDetail, Packages } from './pages/packages';
import { RunDetail, Runs } from './pages/runs';
import { SiteServers } from './pages/site-servers';
import { Sites } from './pages/sites';

const NAV: Array<[string, string]> = [
  ['overview', 'Overview'],
  ['sites', 'Sites & subnets'],
  ['site-servers', 'Site servers'],
  ['agents', 'Agents'],
  ['packages', 'Packages'],
  ['runs', 'Jobs & runs'],
  ['boots', 'Computers & boots'],
  ['gateways', 'Gateways'],
];

export function App(): JSX.Element {
  const [token, setTok] = useState(getToken);
  useEffect(() => onAuthChange(() => setTok(getToken())), []);
  useEffect(() => {
    if (!token) return;
    live.start();
    return () => live.stop();
  }, [token]);
  return token ? <Shell /> : <SignIn />;
}

function SignIn(): JSX.Element {
  const [value, setValue] = useState('');
  const [error, setError] = useState<string | undefined>(() => takeSignOutReason());
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const token = value.trim();
    if (!token) return;
    setBusy(true);
    try {
      await api('/console/snapshot', { token });
      setToken(token);
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? 'The core does not accept that token.' : err instanceof ApiError && err.status === 403 ? 'That credential is not the admin token.' : `Cannot reach the core: ${(err as Error).message}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <form class="card" onSubmit={(e) => void submit(e)}>
        <h1>Outpost</h1>
        <p>
          Sign in with the admin token. <code>outpost start</code> printed where it is: <code>&lt;core dataDir&gt;/admin-token</code> (with <code>npm start</code>, <code>var/core/admin-token</code>).
        </p>
        <label for="token">Admin token</label>
        <input id="token" name="token" type="password" autocomplete="off" spellcheck={false} value={value} onInput={(e) => setValue((e.currentTarget as HTMLInputElement).value)} placeholder="admin.…" autofocus />
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy || value.trim() === ''}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p class="hint">The token stays in this tab only (session storage) and is sent as a bearer header; closing the tab signs you out.</p>
      </form>
    </main>
  );
}

function Shell(): JSX.Element {
  const route = useRoute();
  const state = useLive();
  const [section = 'overview', id] = route.parts;
  const alarms = state.snapshot?.alarms.length ?? 0;
  return (
    <div class="shell">
      <nav class="side">
        <div class="brand">Outpost</div>
        <ul>
          {NAV.map(([key, label]) => (
            <li key={key}>
              <a href={`#/${key}`} class={section === key ? 'active' : ''} aria-current={section === key ? 'page' : undefined}>
                {label}
                {key === 'overview' && alarms > 0 && <span class="count">{alarms}</span>}
              </a>
            </li>
          ))}
        </ul>
        <div class="side-foot">
          <span class={`dot ${state.connected ? 'on' : 'off'}`} />
          <span>{state.connected ? 'live' : 'reconnecting…'}</span>
          <button class="link" onClick={() => clearToken()}>
            Sign out
          </button>
        </div>
      </nav>
      <main class="main" id="main">
        {section === 'overview' && <Overview />}
        {section === 'sites' && <Sites />}
        {section === 'site-servers' && <SiteServers />}
        {section === 'agents' && (id ? <AgentDetail id={id} /> : <Agents query={route.query} />)}
        {section === 'packages' && (id ? <PackageDetail id={id} /> : <Packages />)}
        {section === 'runs' && (id ? <RunDetail id={id} query={route.query} /> : <Runs />)}
        {section === 'boots' && <Boots />}
        {section === 'gateways' && <Gateways />}
        {!NAV.some(([k]) => k === section) && <p>No page here. <a href="#/overview">Overview</a></p>}
      </main>
    </div>
  );
}
