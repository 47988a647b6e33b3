import type { JSX } from 'preact';
import { useEffect } from 'preact/hooks';
import { live } from './live';
import { useRoute } from './router';
import { loadSession, signOut, useSession, type Session } from './session';
import { useLive } from './ui';
import { AgentDetail, Agents } from './pages/agents';
import { Audit } from './pages/audit';
import { Boots } from './pages/boots';
import { Gateways } from './pages/gateways';
import { Overview } from './pages/overview';
import { PackageDetail, Packages } from './pages/packages';
import { RunDetail, Runs } from './pages/runs';
import { SignIn } from './pages/sign-in';
import { SiteServers } from './pages/site-servers';
import { Sites } from './pages/sites';
import { Tokens } from './pages/tokens';

/** The pages, each shown only to administrators holding the permission its list route declares. */
const NAV: Array<{ key: string; label: string; permission: string }> = [
  { key: 'overview', label: 'Overview', permission: 'console.read' },
  { key: 'sites', label: 'Sites & subnets', permission: 'sites.read' },
  { key: 'site-servers', label: 'Site servers', permission: 'site-servers.read' },
  { key: 'agents', label: 'Agents', permission: 'agents.read' },
  { key: 'packages', label: 'Packages', permission: 'packages.read' },
  { key: 'runs', label: 'Jobs & runs', permission: 'runs.read' },
  { key: 'boots', label: 'Computers & boots', permission: 'boot.read' },
  { key: 'gateways', label: 'Gateways', permission: 'ca.read' },
  { key: 'tokens', label: 'Enrollment tokens', permission: 'tokens.read' },
  { key: 'audit', label: 'Audit log', permission: 'audit.read' },
];

export function App(): JSX.Element {
  const s = useSession();
  useEffect(() => void loadSession(), []);
  const signedIn = s.status === 'signed-in';
  const feed = signedIn && s.permissions.has('console.read');
  useEffect(() => {
    if (!feed) return;
    live.start();
    return () => live.stop();
  }, [feed, signedIn && s.session.name]);
  if (s.status === 'loading') return <main class="signin" aria-busy="true" />;
  if (s.status === 'signed-out') return <SignIn reason={s.reason} />;
  return <Shell session={s.session} permissions={s.permissions} />;
}

function Who(props: { session: Session }): JSX.Element {
  const s = props.session;
  return (
    <div class="who" data-testid="who">
      <strong data-testid="who-name">{s.name}</strong>
      {s.roles.map((r) => (
        <span key={r} class="chip role" data-testid="who-role">
          {r}
        </span>
      ))}
      <span class="muted small" data-testid="who-scope">
        {s.sites ? `sites: ${s.sites.join(', ')}` : 'all sites'}
      </span>
      {s.via === 'sso' && <span class="muted small">· single sign-on</span>}
      <button class="secondary small" onClick={() => void signOut()}>
        Sign out
      </button>
    </div>
  );
}

function Shell(props: { session: Session; permissions: ReadonlySet<string> }): JSX.Element {
  const route = useRoute();
  const state = useLive();
  const nav = NAV.filter((n) => props.permissions.has(n.permission));
  const [section = nav[0]?.key ?? 'overview', id] = route.parts;
  const alarms = state.snapshot?.alarms.length ?? 0;
  const allowed = nav.some((n) => n.key === section);
  return (
    <div class="shell">
      <nav class="side">
        <div class="brand">Outpost</div>
        <ul>
          {nav.map(({ key, label }) => (
            <li key={key}>
              <a href={`#/${key}`} class={section === key ? 'active' : ''} aria-current={section === key ? 'page' : undefined}>
                {label}
                {key === 'overview' && alarms > 0 && <span class="count">{alarms}</span>}
              </a>
            </li>
          ))}
        </ul>
        {props.permissions.has('console.read') && (
          <div class="side-foot">
            <span class={`dot ${state.connected ? 'on' : 'off'}`} />
            <span>{state.connected ? 'live' : 'reconnecting…'}</span>
          </div>
        )}
      </nav>
      <div class="body">
        <header class="topbar">
          <Who session={props.session} />
        </header>
        <main class="main" id="main">
          {!allowed && (
            <p>
              No page here{nav.length === 0 ? ': your roles give no page of the console' : ''}. {nav[0] && <a href={`#/${nav[0].key}`}>{nav[0].label}</a>}
            </p>
          )}
          {allowed && section === 'overview' && <Overview />}
          {allowed && section === 'sites' && <Sites />}
          {allowed && section === 'site-servers' && <SiteServers />}
          {allowed && section === 'agents' && (id ? <AgentDetail id={id} /> : <Agents query={route.query} />)}
          {allowed && section === 'packages' && (id ? <PackageDetail id={id} /> : <Packages />)}
          {allowed && section === 'runs' && (id ? <RunDetail id={id} query={route.query} /> : <Runs />)}
          {allowed && section === 'boots' && <Boots />}
          {allowed && section === 'gateways' && <Gateways />}
          {allowed && section === 'tokens' && <Tokens />}
          {allowed && section === 'audit' && <Audit query={route.query} />}
        </main>
      </div>
    </div>
  );
}
