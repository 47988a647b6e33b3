import type { JSX } from 'preact';
import { enc } from '../api';
import { ago, bytes, time } from '../format';
import { NameCell, Table } from '../table';
import { Card, ErrorNote, Page, useApi, useThrottled } from '../ui';
import { useEffect, useState } from 'preact/hooks';

interface Connections {
  gateways: Array<{ id: string; name: string; reportedAt: string; connections: number; stats: Record<string, number> }>;
  items: Array<{ gateway: string; principal: string; kind: string; serial: string; remote: string; target: string; since: string; bytesIn: number; bytesOut: number }>;
}

interface Blocked {
  items: Array<{ id: string; reason?: string; at?: string; blockedAt?: string }>;
}

export function Gateways(): JSX.Element {
  // Gateways report every few seconds; the tables are not in the live feed: poll gently.
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const t = setInterval(() => setTick((n) => n + 1), 5_000);
    return () => clearInterval(t);
  }, []);
  const key = useThrottled(tick, 5_000);
  const conns = useApi<Connections>('/gateway/connections', [key]);
  const blocked = useApi<Blocked>('/ca/blocked', [key]);
  const names = new Map((conns.data?.gateways ?? []).map((g) => [g.id, g.name]));
  return (
    <Page title="Gateways">
      <ErrorNote error={conns.error} />
      <Card title="Gateways">
        <Table
          columns={['Gateway', { label: 'Tunnels', class: 'num' }, 'Reported', 'Counters']}
          rows={conns.data?.gateways}
          empty="No gateway has reported in the last minutes."
          row={(g) => (
            <tr key={g.id} data-gateway={g.name}>
              <NameCell name={g.name} sub={g.id} />
              <td class="num">{g.connections}</td>
              <td>{ago(g.reportedAt)}</td>
              <td class="small muted">
                {Object.entries(g.stats)
                  .slice(0, 8)
                  .map(([k, v]) => `${k} ${v}`)
                  .join(' · ')}
              </td>
            </tr>
          )}
        />
      </Card>
      <Card title="Connections">
        <Table
          columns={['Principal', 'From', 'To', 'Gateway', 'Since', { label: 'In / out', class: 'num' }]}
          rows={conns.data?.items.slice(0, 500)}
          empty="No tunnels open."
          row={(c, i) => (
            <tr key={i}>
              <td>
                {c.kind === 'agent' ? <a href={`#/agents/${enc(c.principal)}`}>{c.principal}</a> : c.principal} <span class="muted small">{c.kind}</span>
              </td>
              <td>{c.remote}</td>
              <td>{c.target}</td>
              <td>{names.get(c.gateway) ?? c.gateway}</td>
              <td>{ago(c.since)}</td>
              <td class="num">
                {bytes(c.bytesIn)} / {bytes(c.bytesOut)}
              </td>
            </tr>
          )}
        />
      </Card>
      <Card title="Revocations: blocked principals">
        <ErrorNote error={blocked.error} />
        <ul class="plain">
          {(blocked.data?.items ?? []).map((b) => (
            <li key={b.id}>
              <code>{b.id}</code> {b.reason && <span>{b.reason}</span>} <span class="muted">{time(b.blockedAt ?? b.at)}</span>
            </li>
          ))}
          {blocked.data && blocked.data.items.length === 0 && <li class="muted">Nobody is blocked.</li>}
        </ul>
      </Card>
    </Page>
  );
}
