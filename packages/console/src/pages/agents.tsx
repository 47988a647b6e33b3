import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, enc } from '../api';
import { ago, time } from '../format';
import { navigate } from '../router';
import type { Agent, AgentRunView, SelectedServer, Site } from '../types';
import { Table } from '../table';
import { Badge, Card, ErrorNote, Page, VirtualList, useApi, useLive, usePaged } from '../ui';

const agentKey = (a: Agent): string => a.id;

export function Agents(props: { query: URLSearchParams }): JSX.Element {
  const state = props.query.get('state') ?? '';
  const site = props.query.get('site') ?? '';
  const q = props.query.get('q') ?? '';
  const [text, setText] = useState(q);
  const sites = useApi<{ items: Site[] }>('/sites');
  const { snapshot } = useLive();
  const params = new URLSearchParams();
  if (state) params.set('state', state);
  if (site) params.set('site', site);
  if (q) params.set('q', q);
  const base = `/agents${params.size ? `?${params}` : ''}`;
  const list = usePaged<Agent>(base, 200, agentKey);
  const setFilter = (key: string, value: string): void => {
    const p = new URLSearchParams(props.query);
    if (value) p.set(key, value);
    else p.delete(key);
    navigate(`#/agents${p.size ? `?${p}` : ''}`);
  };
  // Search as you type, a moment after the last key.
  useEffect(() => {
    if (text === q) return;
    const t = setTimeout(() => setFilter('q', text.trim()), 300);
    return () => clearTimeout(t);
  }, [text]);
  const total = snapshot ? (state ? snapshot.agents[state as keyof typeof snapshot.agents] : snapshot.agents.total) : undefined;
  return (
    <Page title="Agents" actions={<button class="secondary" onClick={list.reload}>Refresh</button>}>
      <div class="filters">
        <input type="search" aria-label="Search agents" placeholder="Search name, id, address, MAC…" value={text} onInput={(e) => setText((e.currentTarget as HTMLInputElement).value)} />
        <select aria-label="State" value={state} onChange={(e) => setFilter('state', (e.currentTarget as HTMLSelectElement).value)}>
          <option value="">all states</option>
          <option value="online">online</option>
          <option value="poll-only">poll-only</option>
          <option value="offline">offline</option>
        </select>
        <select aria-label="Site" value={site} onChange={(e) => setFilter('site', (e.currentTarget as HTMLSelectElement).value)}>
          <option value="">all sites</option>
          {(sites.data?.items ?? []).map((s) => (
            <option key={s.name} value={s.name}>
              {s.name}
            </option>
          ))}
        </select>
        <span class="muted">
          {list.items.length}
          {list.more ? '+' : ''} shown{total !== undefined && !q && !site ? ` of ${total}` : ''}
        </span>
      </div>
      <ErrorNote error={list.error} />
      <Card class="flush">
        <VirtualList
          count={list.items.length}
          rowHeight={40}
          height={560}
          onNearEnd={list.more ? list.loadMore : undefined}
          header={
            <div class="cols agent-cols">
              <span>Name</span>
              <span>State</span>
              <span>Sites</span>
              <span>Addresses</span>
              <span>Last contact</span>
            </div>
          }
          row={(i) => {
            const a = list.items[i]!;
            return (
              <a class="cols agent-cols" href={`#/agents/${enc(a.id)}`} data-agent={a.name}>
                <span class="ellipsis">
                  <strong>{a.name}</strong> <span class="muted small">{a.id}</span>
                </span>
                <span>
                  <Badge state={a.state} />
                </span>
                <span class="ellipsis">{a.sites.join(', ') || '–'}</span>
                <span class="ellipsis muted">{a.ips.join(', ')}</span>
                <span class="muted">
                  {ago(a.lastContact)}
                  {a.lastContactVia ? ` (${a.lastContactVia})` : ''}
                </span>
              </a>
            );
          }}
        />
      </Card>
    </Page>
  );
}

interface History {
  runs: Array<{ id: string; job: string; createdAt: string; view: AgentRunView }>;
}

export function AgentDetail(props: { id: string }): JSX.Element {
  const agent = useApi<Agent>(`/agents/${enc(props.id)}`);
  const task = useApi<{ items: SelectedServer[] }>(`/agents/${enc(props.id)}/site-servers?service=task`);
  const pkg = useApi<{ items: SelectedServer[] }>(`/agents/${enc(props.id)}/site-servers?service=package`);
  const conns = useApi<{ items: Array<{ gateway: string; target: string; remote: string; since: string }> }>(`/gateway/connections?principal=${enc(props.id)}`);
  const { snapshot } = useLive();
  const [history, setHistory] = useState<History | undefined>();
  const runIds = (snapshot?.runs.items ?? []).map((r) => r.id).join(',');
  useEffect(() => {
    const runs = (snapshot?.runs.items ?? []).slice(0, 20);
    let cancelled = false;
    void Promise.all(
      runs.map((r) =>
        api<AgentRunView>(`/runs/${enc(r.id)}/agents/${enc(props.id)}`).then(
          (view) => ({ id: r.id, job: r.job, createdAt: r.createdAt, view }),
          (err: unknown) => (err instanceof ApiError && err.status === 404 ? undefined : undefined),
        ),
      ),
    ).then((all) => !cancelled && setHistory({ runs: all.filter((x): x is NonNullable<typeof x> => x !== undefined) }));
    return () => {
      cancelled = true;
    };
  }, [props.id, runIds]);
  const a = agent.data;
  return (
    <Page title={a ? a.name : 'Agent'} actions={<a href="#/agents">All agents</a>}>
      <ErrorNote error={agent.error} />
      {a && (
        <div class="grid two">
          <Card title="Agent">
            <dl class="kv">
              <dt>State</dt>
              <dd>
                <Badge state={a.state} /> last contact {ago(a.lastContact)} {a.lastContactVia ? `over ${a.lastContactVia}` : ''}
              </dd>
              <dt>Id</dt>
              <dd>
                <code>{a.id}</code>
              </dd>
              <dt>OS</dt>
              <dd>{a.os ?? '–'}</dd>
              <dt>Addresses</dt>
              <dd>{a.ips.join(', ') || '–'}</dd>
              <dt>MACs</dt>
              <dd>{a.macs.join(', ') || '–'}</dd>
              <dt>Sites</dt>
              <dd>{a.sites.join(', ') || '(none)'}</dd>
              <dt>Enrolled</dt>
              <dd>{time(a.createdAt)}</dd>
            </dl>
          </Card>
          <Card title="Its servers">
            <h3>Task server</h3>
            <ServerList items={task.data?.items} assigned={a.taskServer} />
            <h3>Package sources (in order)</h3>
            <ServerList items={pkg.data?.items} />
            <h3>Gateway tunnels</h3>
            {conns.data && conns.data.items.length ? (
              <ul class="plain">
                {conns.data.items.map((c, i) => (
                  <li key={i}>
                    {c.remote} → {c.target} <span class="muted">since {ago(c.since)}</span>
                  </li>
                ))}
              </ul>
            ) : (
              <p class="muted">None (it reaches the core directly).</p>
            )}
          </Card>
        </div>
      )}
      <Card title="Run history">
        {!history ? (
          <p class="muted">Loading…</p>
        ) : history.runs.length === 0 ? (
          <p class="muted">Not a target of any recent run.</p>
        ) : (
          <Table
            columns={['Run', 'State', 'Steps', 'Started']}
            rows={history.runs}
            row={(h) => (
              <tr key={h.id}>
                <td>
                  <a href={`#/runs/${enc(h.id)}?agent=${enc(props.id)}`}>{h.job}</a> <span class="muted small">{h.id}</span>
                </td>
                <td>
                  <Badge state={h.view.state} /> {h.view.error && <span class="muted">{h.view.error}</span>}
                </td>
                <td>
                  {h.view.steps.map((s, i) => (
                    <Badge key={i} state={s.state}>
                      {s.name}
                      {s.exitCode !== undefined ? ` (${s.exitCode})` : ''}
                    </Badge>
                  ))}
                </td>
                <td>{time(h.createdAt)}</td>
              </tr>
            )}
          />
        )}
      </Card>
    </Page>
  );
}

function ServerList(props: { items: SelectedServer[] | undefined; assigned?: string | undefined }): JSX.Element {
  if (!props.items) return <p class="muted">…</p>;
  if (props.items.length === 0) return <p class="muted">None.</p>;
  return (
    <ol class="plain">
      {props.items.map((s) => (
        <li key={s.id}>
          <Badge state={s.state} /> {s.name} <span class="muted small">{s.url ?? ''} · by {s.reason}</span>
          {props.assigned === s.id && <span class="chip">assigned</span>}
        </li>
      ))}
    </ol>
  );
}
