import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, enc } from '../api';
import { num, time } from '../format';
import { navigate } from '../router';
import { RUN_STATES, type AgentRunView, type Job, type RunListItem, type RunView, type Site } from '../types';
import { finished, RunCells, Table } from '../table';
import { useCan } from '../session';
import { Badge, Card, ErrorNote, Page, StackedBar, VirtualList, describe, useApi, useLive, usePaged, useThrottled } from '../ui';

function StartRun(props: { jobs: Job[] }): JSX.Element {
  const sites = useApi<{ items: Site[] }>('/sites');
  const [job, setJob] = useState('');
  const [target, setTarget] = useState<'all' | 'site' | 'agents'>('all');
  const [site, setSite] = useState('');
  const [agents, setAgents] = useState('');
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const chosen = job || props.jobs[0]?.name || '';
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const body =
        target === 'all'
          ? { all: true }
          : target === 'site'
            ? { site }
            : {
                agents: agents
                  .split(/[\s,]+/)
                  .map((a) => a.trim())
                  .filter(Boolean),
              };
      const run = await api<{ id: string }>(`/jobs/${enc(chosen)}/runs`, { method: 'POST', body });
      navigate(`#/runs/${enc(run.id)}`);
    } catch (err) {
      setError(describe(err));
    } finally {
      setBusy(false);
    }
  };
  if (props.jobs.length === 0) return <p class="muted">No jobs defined yet: <code>outpost job create</code> makes one.</p>;
  return (
    <form class="form inline" data-action="runs.start" onSubmit={(e) => void submit(e)} aria-label="Start a run">
      <label>
        Job
        <select name="job" value={chosen} onChange={(e) => setJob((e.currentTarget as HTMLSelectElement).value)}>
          {props.jobs.map((j) => (
            <option key={j.name} value={j.name}>
              {j.name}
            </option>
          ))}
        </select>
      </label>
      <label>
        On
        <select name="target" value={target} onChange={(e) => setTarget((e.currentTarget as HTMLSelectElement).value as typeof target)}>
          <option value="all">all agents</option>
          <option value="site">a site</option>
          <option value="agents">agent ids</option>
        </select>
      </label>
      {target === 'site' && (
        <label>
          Site
          <select name="site" value={site} onChange={(e) => setSite((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">choose…</option>
            {(sites.data?.items ?? []).map((s) => (
              <option key={s.name} value={s.name}>
                {s.name}
              </option>
            ))}
          </select>
        </label>
      )}
      {target === 'agents' && (
        <label class="grow">
          Agent ids
          <input name="agents" value={agents} onInput={(e) => setAgents((e.currentTarget as HTMLInputElement).value)} placeholder="ag_…, ag_…" />
        </label>
      )}
      <button type="submit" disabled={busy || !chosen}>
        Start run
      </button>
      <ErrorNote error={error} />
    </form>
  );
}

export function Runs(): JSX.Element {
  const { snapshot } = useLive();
  const jobs = useApi<{ items: Job[] }>('/jobs');
  const key = useThrottled(snapshot?.runs.total, 1_000);
  const runs = useApi<{ items: RunListItem[] }>('/runs', [key]);
  const liveById = new Map((snapshot?.runs.items ?? []).map((r) => [r.id, r]));
  const start = useCan('runs.start');
  return (
    <Page title="Jobs & runs">
      {start && (
        <Card title="Start a run">
          <StartRun jobs={jobs.data?.items ?? []} />
        </Card>
      )}
      <ErrorNote error={runs.error ?? jobs.error} />
      <Card title="Runs">
        <Table
          columns={['Run', 'State', { label: 'Agents by state', class: 'wide' }, { label: 'Done', class: 'num' }, 'Started']}
          rows={runs.data?.items.slice(0, 200)}
          row={(r0) => {
            const r = liveById.get(r0.id) ?? r0;
            return (
              <tr key={r.id} data-run={r.id}>
                <RunCells run={r} state={<Badge state={r.state} />} />
                <td>{time(r.createdAt)}</td>
              </tr>
            );
          }}
        />
      </Card>
      <Card title="Jobs">
        <ul class="plain">
          {(jobs.data?.items ?? []).map((j) => (
            <li key={j.name}>
              <strong>{j.name}</strong> <span class="muted">{j.steps.map((s) => s.task ?? s.job).join(' → ')}</span>
            </li>
          ))}
        </ul>
      </Card>
    </Page>
  );
}

const agentRunKey = (a: AgentRunView): string => a.agent;

export function RunDetail(props: { id: string; query: URLSearchParams }): JSX.Element {
  const { snapshot } = useLive();
  const liveRun = snapshot?.runs.items.find((r) => r.id === props.id);
  // The summary (hop times, failures) is one pass over all agents: at most every 2 s,
  // and the agent list after it. When the live feed says the run ended, both are fetched
  // at once: a throttle's trailing refetch must not leave the page showing agents in the
  // state they had when the last count changed (a finished agent as `fetched`).
  const ended = liveRun !== undefined && liveRun.state !== 'active';
  const key = useThrottled(`${JSON.stringify(liveRun?.counts ?? null)}|${ended}`, ended ? 0 : 2_000);
  const view = useApi<RunView>(`/runs/${enc(props.id)}`, [key]);
  const stateFilter = props.query.get('state') ?? '';
  const base = `/runs/${enc(props.id)}/agents${stateFilter ? `?state=${enc(stateFilter)}` : ''}`;
  const agents = usePaged<AgentRunView>(base, 500, agentRunKey);
  // Short lists follow the run by themselves; a long one (50,000 agents) keeps its scroll
  // position and is refreshed on demand.
  const { reload: reloadAgents } = agents;
  const shortList = agents.items.length <= 1_000;
  const listKey = useThrottled(key, ended ? 0 : shortList ? 2_000 : 5_000);
  useEffect(() => {
    if (shortList) reloadAgents();
  }, [listKey]);
  const [selected, setSelected] = useState<string | undefined>(props.query.get('agent') ?? undefined);
  const detail = useApi<AgentRunView>(selected ? `/runs/${enc(props.id)}/agents/${enc(selected)}` : undefined, [listKey]);
  const [error, setError] = useState<string | undefined>();
  const canCancel = useCan('runs.start');
  const r = view.data;
  const counts = liveRun?.counts ?? r?.counts;
  const total = liveRun?.agents ?? r?.agents ?? 0;
  const state = liveRun?.state ?? r?.state;
  const done = counts ? finished(counts) : 0;
  const percent = total ? Math.floor((done / total) * 100) : 0;
  const failures = liveRun?.failures ?? r?.failures ?? [];
  const cancel = async (): Promise<void> => {
    try {
      await api(`/runs/${enc(props.id)}/cancel`, { method: 'POST', body: {} });
      view.reload();
    } catch (err) {
      setError(describe(err));
    }
  };
  const setState = (s: string): void => navigate(`#/runs/${enc(props.id)}${s ? `?state=${enc(s)}` : ''}`);
  return (
    <Page
      title={r ? `Run of ${r.job}` : 'Run'}
      actions={
        <>
          {canCancel && state === 'active' && (
            <button class="secondary" data-action="runs.start" onClick={() => void cancel()}>
              Cancel run
            </button>
          )}
          <button class="secondary" onClick={agents.reload}>
            Refresh agents
          </button>
          <a href="#/runs">All runs</a>
        </>
      }
    >
      <ErrorNote error={view.error ?? error} />
      {counts && (
        <Card>
          <div class="run-head">
            <div>
              <div class="big" data-testid="run-percent">
                {percent} %
              </div>
              <div class="muted">
                {num(done)} of {num(total)} agents finished · <Badge state={state ?? 'active'} />
              </div>
            </div>
            <div class="grow">
              <StackedBar total={total} parts={RUN_STATES.map((s) => ({ state: s, value: counts[s] }))} />
              <div class="legend">
                {RUN_STATES.map((s) => (
                  <button key={s} class={`legend-item s-${s} ${stateFilter === s ? 'active' : ''}`} onClick={() => setState(stateFilter === s ? '' : s)} data-state={s}>
                    <span class="swatch" /> {s} <strong>{num(counts[s])}</strong>
                  </button>
                ))}
              </div>
            </div>
          </div>
          <p class="muted small">
            <code>{props.id}</code>
            {r?.expiresAt ? ` · expires ${time(r.expiresAt)}` : ''}
          </p>
        </Card>
      )}
      <div class="grid two">
        <Card title="Failures, grouped">
          {failures.length === 0 ? (
            <p class="ok">No failures.</p>
          ) : (
            <Table
              rows={failures}
              row={(f) => (
                <tr key={f.error}>
                  <td>
                    <code>{f.error}</code>
                  </td>
                  <td class="num">{num(f.count)}</td>
                </tr>
              )}
            />
          )}
        </Card>
        <Card title="Hops (ms after the run began)">
          {r?.hops ? (
            <Table
              columns={['Hop', ...['Agents', 'p50', 'p99', 'max'].map((label) => ({ label, class: 'num' }))]}
              rows={Object.entries(r.hops)}
              row={([hop, h]) => (
                <tr key={hop}>
                  <td>{hop}</td>
                  <td class="num">{num(h.count)}</td>
                  <td class="num">{num(h.p50)}</td>
                  <td class="num">{num(h.p99)}</td>
                  <td class="num">{num(h.max)}</td>
                </tr>
              )}
            />
          ) : (
            <p class="muted">…</p>
          )}
        </Card>
      </div>
      <div class="grid two">
        <Card title={`Agents${stateFilter ? ` (${stateFilter})` : ''}`} class="flush">
          <ErrorNote error={agents.error} />
          <VirtualList
            count={agents.items.length}
            rowHeight={36}
            height={420}
            onNearEnd={agents.more ? agents.loadMore : undefined}
            header={
              <div class="cols run-cols">
                <span>Agent</span>
                <span>State</span>
                <span>Steps</span>
              </div>
            }
            row={(i) => {
              const a = agents.items[i]!;
              return (
                <button class={`cols run-cols rowbtn ${selected === a.agent ? 'selected' : ''}`} onClick={() => setSelected(a.agent)} data-agent={a.agent}>
                  <span class="ellipsis">{a.agent}</span>
                  <span>
                    <Badge state={a.state} />
                  </span>
                  <span class="ellipsis">
                    {a.steps.map((s, j) => (
                      <span key={j} class={`dotstate s-${s.state}`} title={`${s.name}: ${s.state}`} />
                    ))}
                  </span>
                </button>
              );
            }}
          />
        </Card>
        <Card title={selected ? `Agent ${selected}` : 'Agent steps'}>
          {!selected ? (
            <p class="muted">Choose an agent to see its step results and output.</p>
          ) : detail.data ? (
            <div class="steps">
              <p>
                <Badge state={detail.data.state} /> {detail.data.error && <code>{detail.data.error}</code>} {detail.data.via && <span class="muted">woken via {detail.data.via}</span>} <a href={`#/agents/${enc(selected)}`}>agent page</a>
              </p>
              {detail.data.steps.map((s, i) => (
                <div key={i} class="step">
                  <div>
                    <strong>{s.name}</strong> <Badge state={s.state} /> {s.exitCode !== undefined && <span>exit {s.exitCode}</span>} {s.error && <code>{s.error}</code>}
                    {s.attempt ? <span class="muted"> attempt {s.attempt + 1}</span> : null}
                  </div>
                  {s.output !== undefined && (
                    <pre class="output">
                      {s.output}
                      {s.truncated ? '\n… (cut at the cap)' : ''}
                    </pre>
                  )}
                </div>
              ))}
            </div>
          ) : (
            <ErrorNote error={detail.error} />
          )}
        </Card>
      </div>
    </Page>
  );
}
