import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { enc } from '../api';
import { ago, time } from '../format';
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
        <table class="table">
          <thead>
            <tr>
              <th>Computer</th>
              <th>Kind</th>
              <th>Boots into</th>
              <th>Agent</th>
              <th class="num">Boots</th>
              <th>Last boot</th>
            </tr>
          </thead>
          <tbody>
            {(computers.data?.items ?? []).map((c) => (
              <tr key={c.id}>
                <td>
                  <strong>{c.name ?? c.id}</strong>
                  <div class="muted small">{c.macs.join(', ')}</div>
                </td>
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
            ))}
            {computers.data && computers.data.items.length === 0 && (
              <tr>
                <td colSpan={6} class="muted">
                  No computers known yet.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </Card>
      <Card title="Boots (newest first)">
        <table class="table">
          <thead>
            <tr>
              <th>MAC</th>
              <th>Kind</th>
              <th>Image</th>
              <th>Started</th>
              <th class="num">Took</th>
              <th>State</th>
            </tr>
          </thead>
          <tbody>
            {(boots.data?.items ?? []).map((b) => [
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
            ])}
            {boots.data && boots.data.items.length === 0 && (
              <tr>
                <td colSpan={6} class="muted">
                  No boots recorded.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </Card>
    </Page>
  );
}
