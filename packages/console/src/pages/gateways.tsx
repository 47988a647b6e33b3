import type { JSX } from 'preact';
import { enc } from '../api';
import { ago, bytes, time } from '../format';
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
        <table class="table">
          <thead>
            <tr>
              <th>Gateway</th>
              <th class="num">Tunnels</th>
              <th>Reported</th>
              <th>Counters</th>
            </tr>
          </thead>
          <tbody>
            {(conns.data?.gateways ?? []).map((g) => (
              <tr key={g.id} data-gateway={g.name}>
                <td>
                  <strong>{g.name}</strong>
                  <div class="muted small">{g.id}</div>
                </td>
                <td class="num">{g.connections}</td>
                <td>{ago(g.reportedAt)}</td>
                <td class="small muted">
                  {Object.entries(g.stats)
                    .slice(0, 8)
                    .map(([k, v]) => `${k} ${v}`)
                    .join(' · ')}
                </td>
              </tr>
            ))}
            {conns.data && conns.data.gateways.length === 0 && (
              <tr>
                <td colSpan={4} class="muted">
                  No gateway has reported in the last minutes.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </Card>
      <Card title="Connections">
        <table class="table">
          <thead>
            <tr>
              <th>Principal</th>
              <th>From</th>
              <th>To</th>
              <th>Gateway</th>
              <th>Since</th>
              <th class="num">In / out</th>
            </tr>
          </thead>
          <tbody>
            {(conns.data?.items ?? []).slice(0, 500).map((c, i) => (
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
            ))}
            {conns.data && conns.data.items.length === 0 && (
              <tr>
                <td colSpan={6} class="muted">
                  No tunnels open.
                </td>
              </tr>
            )}
          </tbody>
        </table>
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
