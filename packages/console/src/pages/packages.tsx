import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { api, enc } from '../api';
import { ago, bytes, time } from '../format';
import type { PackageSummary, PackageView } from '../types';
import { Table } from '../table';
import { useCan } from '../session';
import { Badge, Card, ErrorNote, Page, Progress, StackedBar, describe, useApi, useLive, useThrottled } from '../ui';

export function Packages(): JSX.Element {
  const { snapshot } = useLive();
  const key = useThrottled(JSON.stringify(snapshot?.staging.packages ?? []), 1_000);
  const list = useApi<{ items: PackageSummary[] }>('/packages', [key]);
  return (
    <Page title="Packages">
      <ErrorNote error={list.error} />
      <Card>
        <Table
          columns={['Package', 'State', 'Size', 'Staging on servers', 'Added']}
          rows={list.data?.items}
          empty={
            <>
              No packages. <code>outpost package add ./dir --name demo</code> adds one.
            </>
          }
          row={(p) => (
            <tr key={p.id} data-package={p.name}>
              <td>
                <a href={`#/packages/${enc(p.id)}`}>
                  <strong>{p.name}</strong>@{p.version}
                </a>
                <div class="muted small">{p.files} files</div>
              </td>
              <td>
                <Badge state={p.state} /> {p.enabled ? <Badge state="enabled" /> : <Badge state="disabled" />}
              </td>
              <td>{bytes(p.size)}</td>
              <td class="wide">
                <StackedBar
                  total={Math.max(1, p.servers.total)}
                  parts={[
                    { state: 'ready', value: p.servers.ready },
                    { state: 'downloading', value: p.servers.downloading },
                    { state: 'pending', value: p.servers.pending },
                    { state: 'failed', value: p.servers.failed },
                  ]}
                />
                <span class="muted small">
                  {p.servers.ready}/{p.servers.total} ready{p.servers.failed ? `, ${p.servers.failed} failed` : ''}
                </span>
              </td>
              <td>{time(p.createdAt)}</td>
            </tr>
          )}
        />
      </Card>
    </Page>
  );
}

export function PackageDetail(props: { id: string }): JSX.Element {
  const { snapshot } = useLive();
  const live = snapshot?.staging.packages.find((p) => p.id === props.id);
  const key = useThrottled(JSON.stringify(live ?? null) + JSON.stringify(snapshot?.staging.servers ?? []), 1_000);
  const view = useApi<PackageView>(`/packages/${enc(props.id)}`, [key]);
  const [error, setError] = useState<string | undefined>();
  const enable = useCan('packages.enable');
  const p = view.data;
  const act = async (what: 'enable' | 'disable'): Promise<void> => {
    try {
      await api(`/packages/${enc(props.id)}/${what}`, { method: 'POST', body: {} });
      view.reload();
    } catch (err) {
      setError(describe(err));
    }
  };
  return (
    <Page
      title={p ? `${p.name}@${p.version}` : 'Package'}
      actions={
        p && (
          <>
            {enable &&
              (p.enabled ? (
                <button class="secondary" data-action="packages.enable" onClick={() => void act('disable')}>
                  Disable
                </button>
              ) : (
                <button data-action="packages.enable" onClick={() => void act('enable')} disabled={p.state !== 'ready'}>
                  Enable on all servers
                </button>
              ))}
            <a href="#/packages">All packages</a>
          </>
        )
      }
    >
      <ErrorNote error={view.error ?? error} />
      {p && (
        <>
          <Card title="Package">
            <dl class="kv">
              <dt>State</dt>
              <dd>
                <Badge state={p.state} /> {p.enabled ? 'enabled' : 'not enabled'}
              </dd>
              <dt>Files</dt>
              <dd>
                {p.files} ({bytes(p.size)})
              </dd>
              <dt>Source</dt>
              <dd>{p.source}</dd>
              <dt>Added</dt>
              <dd>{time(p.createdAt)}</dd>
              <dt>Agent downloads</dt>
              <dd>
                {p.downloads.ok} ok, {p.downloads.failed} failed
              </dd>
            </dl>
          </Card>
          <Card title="Staging per server">
            {p.servers.length === 0 ? (
              <p class="muted">Not assigned to any package server{p.enabled ? '' : ' (enable it)'}.</p>
            ) : (
              <Table
                columns={['Server', 'State', { label: 'Progress', class: 'wide' }, 'Codebase', 'Retries']}
                rows={p.servers}
                row={(s) => (
                  <tr key={s.id} data-server={s.name}>
                    <td>
                      {s.name ?? s.id}
                      <div class="muted small">{s.constrained ? 'constrained' : 'unconstrained'}</div>
                    </td>
                    <td>
                      <Badge state={s.state} />
                      {s.waitingFor && <div class="muted small">waiting for {s.waitingFor}</div>}
                    </td>
                    <td class="wide">
                      <Progress value={s.bytesDone} max={s.bytesTotal} state={s.state} label={`${bytes(s.bytesDone)} / ${bytes(s.bytesTotal)}`} />
                    </td>
                    <td>{s.codebase ? <code class="small">{s.codebase}</code> : <span class="muted">–</span>}</td>
                    <td>
                      {s.attempt ? `attempt ${s.attempt}` : '–'}
                      {s.nextRetryAt && <div class="small">next retry {ago(s.nextRetryAt)}</div>}
                      {s.lastError && <div class="error small">{s.lastError}</div>}
                    </td>
                  </tr>
                )}
              />
            )}
          </Card>
          {p.missing && (
            <Card title="Files still missing">
              <ul class="plain">
                {p.missing.slice(0, 50).map((m) => (
                  <li key={m.path}>
                    <code>{m.path}</code> {bytes(m.received)} / {bytes(m.size)} {m.problem && <span class="error">{m.problem}</span>}
                  </li>
                ))}
              </ul>
            </Card>
          )}
        </>
      )}
    </Page>
  );
}
