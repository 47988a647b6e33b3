import type { JSX } from 'preact';
import { ago, bytes, num } from '../format';
import { RunCells, Table } from '../table';
import { Badge, Card, Page, Progress, StackedBar, Stat, useApi, useLive, useThrottled } from '../ui';

interface Boot {
  id: string;
  mac: string;
  kind: string;
  handedOff: boolean;
  startedAt?: string;
  image?: string;
}

export function Overview(): JSX.Element {
  const { snapshot: s, connected } = useLive();
  const hasBoot = s?.modules.boot !== undefined;
  const bootKey = useThrottled(JSON.stringify(s?.modules.boot ?? null), 5_000);
  const boots = useApi<{ items: Boot[] }>(hasBoot ? '/boot/boots?limit=5' : undefined, [bootKey]);
  if (!s) return <Page title="Overview">{connected ? <p>Loading…</p> : <p>Connecting to the live feed…</p>}</Page>;
  const active = s.runs.items.filter((r) => r.state === 'active');
  const ca = s.modules.ca as { certificates?: { live?: number; revoked?: number }; blocked?: number } | undefined;
  return (
    <Page title="Overview">
      <div class="grid">
        <Card title="Agents">
          <div class="stats">
            <Stat label="online" value={s.agents.online} state="online" href="#/agents?state=online" />
            <Stat label="poll-only" value={s.agents['poll-only']} state="poll-only" href="#/agents?state=poll-only" />
            <Stat label="offline" value={s.agents.offline} state="offline" href="#/agents?state=offline" />
          </div>
          <StackedBar
            total={s.agents.total}
            parts={[
              { state: 'online', value: s.agents.online },
              { state: 'poll-only', value: s.agents['poll-only'] },
              { state: 'offline', value: s.agents.offline },
            ]}
          />
          <p class="muted">
            {num(s.agents.total)} agents in {num(s.sites)} sites
          </p>
        </Card>
        <Card title="Site servers">
          <div class="stats">
            <Stat label="online" value={s.siteServers.online} state="online" href="#/site-servers" />
            <Stat label="offline" value={s.siteServers.offline} state={s.siteServers.offline > 0 ? 'offline' : 'plain'} href="#/site-servers" />
          </div>
          <ul class="plain">
            {s.siteServers.items.slice(0, 6).map((ss) => (
              <li key={ss.id}>
                <Badge state={ss.state} /> {ss.name} <span class="muted">{ss.services.join(', ')}</span>
              </li>
            ))}
          </ul>
        </Card>
        <Card title="Alarms" class={s.alarms.length ? 'alarm' : ''}>
          {s.alarms.length === 0 ? (
            <p class="ok">Nothing needs attention.</p>
          ) : (
            <ul class="plain alarms">
              {s.alarms.slice(0, 12).map((a, i) => (
                <li key={i} class={`sev-${a.severity}`}>
                  {a.href ? <a href={a.href}>{a.text}</a> : a.text}
                </li>
              ))}
            </ul>
          )}
        </Card>
      </div>
      <Card title={`Runs in progress (${active.length})`}>
        {active.length === 0 ? (
          <p class="muted">
            No run in progress. <a href="#/runs">Start one</a>.
          </p>
        ) : (
          <Table
            rows={active.slice(0, 10)}
            row={(r) => (
              <tr key={r.id}>
                <RunCells run={r} />
              </tr>
            )}
          />
        )}
      </Card>
      <div class="grid two">
        <Card title="Package staging">
          {s.staging.servers.length === 0 ? (
            <p class="muted">No package server has enrolled.</p>
          ) : (
            s.staging.servers.map((srv) => (
              <div key={srv.id} class="staging-row">
                <div class="row-head">
                  <span>{srv.name}</span>
                  <span class="muted small">
                    {srv.ready} ready · {srv.downloading} downloading · {srv.pending} pending{srv.failed ? ` · ${srv.failed} failed` : ''}
                  </span>
                </div>
                <Progress value={srv.bytesDone} max={srv.bytesTotal} state={srv.failed ? 'failed' : srv.ready === srv.ready + srv.downloading + srv.pending ? 'ready' : 'downloading'} label={`${bytes(srv.bytesDone)} / ${bytes(srv.bytesTotal)}`} />
              </div>
            ))
          )}
        </Card>
        <Card title="Recent boots">
          {!hasBoot ? (
            <p class="muted">The boot module is not part of this core.</p>
          ) : boots.data && boots.data.items.length ? (
            <ul class="plain">
              {boots.data.items.slice(0, 5).map((b) => (
                <li key={b.id}>
                  <code>{b.mac}</code> <Badge state={b.kind} /> {b.image ?? ''} <span class="muted">{b.handedOff ? 'handed off' : 'booting'} · {ago(b.startedAt)}</span>
                </li>
              ))}
            </ul>
          ) : (
            <p class="muted">No boots yet.</p>
          )}
        </Card>
        <Card title="Gateways">
          {ca ? (
            <p>
              {num(ca.certificates?.live ?? 0)} live certificates, {num(ca.certificates?.revoked ?? 0)} revoked, {num(ca.blocked ?? 0)} blocked principals. <a href="#/gateways">Connections</a>
            </p>
          ) : (
            <p class="muted">No certificate authority.</p>
          )}
        </Card>
      </div>
    </Page>
  );
}
