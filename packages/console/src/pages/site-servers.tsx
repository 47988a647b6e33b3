import type { JSX } from 'preact';
import { ago, num } from '../format';
import type { SiteServer } from '../types';
import { NameCell, Table } from '../table';
import { Badge, Card, ErrorNote, Page, Progress, useApi, useLive, useThrottled } from '../ui';

export function SiteServers(): JSX.Element {
  const { snapshot } = useLive();
  const key = useThrottled(JSON.stringify(snapshot?.siteServers.items.map((s) => [s.id, s.state, s.agents]) ?? []), 2_000);
  const list = useApi<{ items: SiteServer[] }>('/site-servers', [key]);
  const items = list.data?.items ?? [];
  const maxLoad = Math.max(1, ...items.map((s) => s.load.agents));
  const staging = new Map((snapshot?.staging.servers ?? []).map((s) => [s.id, s]));
  return (
    <Page title="Site servers">
      <ErrorNote error={list.error} />
      <Card>
        <Table
          columns={['Server', 'Health', 'Services', 'Sites', 'Load (agents)', 'Last contact']}
          rows={list.data?.items}
          empty={
            <>
              No site server has enrolled. <code>outpost token create --for site-server</code> makes an enrollment token.
            </>
          }
          row={(s) => {
            const st = staging.get(s.id);
            return (
              <tr key={s.id} data-server={s.name}>
                <NameCell name={s.name} sub={`${s.id}${s.grant.addresses.length ? ` · ${s.grant.addresses.join(', ')}` : ''}`} />
                <td>
                  <Badge state={s.state} />
                </td>
                <td>
                  {Object.entries(s.services)
                    .filter(([, v]) => v !== undefined)
                    .map(([k, v]) => (
                      <div key={k}>
                        <span class="chip">{k}</span>
                        {v?.constrained !== undefined && <span class="muted small"> {v.constrained ? 'constrained' : 'unconstrained'}</span>}
                        {v?.url && <span class="muted small"> {v.url}</span>}
                        {k === 'package' && st && (
                          <span class="muted small">
                            {' '}
                            · {st.ready} ready, {st.downloading} staging{st.failed ? `, ${st.failed} failed` : ''}
                          </span>
                        )}
                      </div>
                    ))}
                </td>
                <td>{(s.effectiveSites.length ? s.effectiveSites : ['(none)']).join(', ')}</td>
                <td class="load">
                  <Progress value={s.load.agents} max={maxLoad} label={num(s.load.agents)} />
                </td>
                <td>{ago(s.lastContact)}</td>
              </tr>
            );
          }}
        />
      </Card>
    </Page>
  );
}
