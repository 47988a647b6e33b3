import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { enc } from '../api';
import { ago, time } from '../format';
import { NameCell, Table } from '../table';
import { Badge, Card, ErrorNote, Page, useApi, useLive, useThrottled } from '../ui';

interface Computer {
  id: string;
  macs: string[];
  name?: string;
  kind: string;
  image?: string;
  job?: string;
  agentId?: string;
  once?: { image: string; job?: string; requestedAt?: string };
  lastBootAt?: string;
  boots: number;
}

interface Boot {
  id: string;
  mac: string;
  kind: string;
  image?: string;
  job?: string;
  ip?: string;
  startedAt: string;
  durationMs: number;
  handedOff: boolean;
  /** The netboot servers' boot ids: grep their logs (and the core's) for them. */
  netbootIds?: string[];
  events: Array<{ type: string; at: string; offsetMs: number; server?: string; detail?: Record<string, string | number | boolean> }>;
}

export function Boots(): JSX.Element {
  const { snapshot } = useLive();
  const present = snapshot ? snapshot.modules.boot !== undefined : true;
  const key = useThrottled(JSON.stringify(snapshot?.modules.boot ?? null), 2_000);
  const computers = useApi<{ items: Computer[] }>(present ? '/boot/computers' : undefined, [key]);
  const boots = useApi<{ items: Boot[] }>(present ? '/boot/boots?limit=100' : undefined, [key]);
  const [open, setOpen] = useState<string | undefined>();
  if (!present) {
    return (
      <Page title="Computers & boots">
        <p class="muted">This core has no boot module.</p>
      </Page>
    );
  }
  return (
    <Page title="Computers & boots">
      <ErrorNote error={computers.error ?? boots.error} />
      <Card title="Computers">
        <Table
          columns={['Computer', 'Kind', 'Boots into', 'Agent', { label: 'Boots', class: 'num' }, 'Last boot']}
          rows={computers.data?.items}
          empty="No computers known yet."
          row={(c) => (
            <tr key={c.id}>
              <NameCell name={c.name ?? c.id} sub={c.macs.join(', ')} />
              <td>
                <Badge state={c.kind} />
              </td>
              <td>
                {c.once ? `${c.once.image} (once)` : (c.image ?? 'local disk')}
                {c.job ? ` → ${c.job}` : ''}
              </td>
              <td>{c.agentId ? <a href={`#/agents/${enc(c.agentId)}`}>{c.agentId}</a> : '–'}</td>
              <td class="num">{c.boots}</td>
              <td>{ago(c.lastBootAt)}</td>
            </tr>
          )}
        />
      </Card>
      <Card title="Boots (newest first)">
        <Table
          columns={['MAC', 'Kind', 'Image', 'Started', { label: 'Took', class: 'num' }, 'State']}
          rows={boots.data?.items}
          empty="No boots recorded."
          row={(b) => [
            <tr key={b.id} class="clickable" onClick={() => setOpen(open === b.id ? undefined : b.id)}>
              <td>
                <code>{b.mac}</code>
                {b.ip && <span class="muted small"> {b.ip}</span>}
              </td>
              <td>
                <Badge state={b.kind} />
              </td>
              <td>{b.image ?? '–'}</td>
              <td>{time(b.startedAt)}</td>
              <td class="num">{(b.durationMs / 1000).toFixed(1)} s</td>
              <td>{b.handedOff ? <Badge state="succeeded">handed off</Badge> : <Badge state="running">booting</Badge>}</td>
            </tr>,
            open === b.id && (
              <tr key={`${b.id}-t`}>
                <td colSpan={6}>
                  <p class="muted small">
                    boot <code>{b.id}</code>
                    {b.netbootIds?.length ? (
                      <>
                        {' '}
                        · in the netboot logs <code>{b.netbootIds.join(', ')}</code>
                      </>
                    ) : null}
                  </p>
                  <ol class="timeline">
                    {b.events.map((e, i) => (
                      <li key={i}>
                        <span class="muted">+{(e.offsetMs / 1000).toFixed(2)} s</span> <strong>{e.type}</strong> {e.server && <span class="muted">{e.server}</span>}{' '}
                        {e.detail && <code class="small">{JSON.stringify(e.detail)}</code>}
                      </li>
                    ))}
                  </ol>
                </td>
              </tr>
            ),
          ]}
        />
      </Card>
    </Page>
  );
}
