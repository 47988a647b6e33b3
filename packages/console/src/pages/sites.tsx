import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { api, enc } from '../api';
import { time } from '../format';
import type { Site } from '../types';
import { NameCell, Table } from '../table';
import { useCan } from '../session';
import { Card, ErrorNote, Page, describe, useApi, useLive } from '../ui';

const splitSubnets = (s: string): string[] =>
  s
    .split(/[\s,]+/)
    .map((x) => x.trim())
    .filter(Boolean);

function SiteForm(props: { site?: Site; onDone: () => void }): JSX.Element {
  const [name, setName] = useState(props.site?.name ?? '');
  const [subnets, setSubnets] = useState(props.site?.subnets.join(', ') ?? '');
  const [description, setDescription] = useState(props.site?.description ?? '');
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const body = { subnets: splitSubnets(subnets), ...(description ? { description } : {}) };
      if (props.site) await api(`/sites/${enc(props.site.name)}`, { method: 'PATCH', body });
      else await api('/sites', { method: 'POST', body: { name: name.trim(), ...body } });
      props.onDone();
    } catch (err) {
      setError(describe(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="form" data-action="sites.write" onSubmit={(e) => void submit(e)} aria-label={props.site ? `Edit site ${props.site.name}` : 'Add a site'}>
      {!props.site && (
        <label>
          Name
          <input name="name" value={name} onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)} required placeholder="hq" />
        </label>
      )}
      <label>
        Subnets
        <input name="subnets" value={subnets} onInput={(e) => setSubnets((e.currentTarget as HTMLInputElement).value)} placeholder="10.1.0.0/16, 2001:db8::/48" />
      </label>
      <label>
        Description
        <input name="description" value={description} onInput={(e) => setDescription((e.currentTarget as HTMLInputElement).value)} />
      </label>
      <div class="form-actions">
        <button type="submit" disabled={busy}>
          {props.site ? 'Save' : 'Add site'}
        </button>
        <button type="button" class="secondary" onClick={props.onDone}>
          Cancel
        </button>
      </div>
      <ErrorNote error={error} />
    </form>
  );
}

export function Sites(): JSX.Element {
  const { snapshot } = useLive();
  const sites = useApi<{ items: Site[] }>('/sites', [snapshot?.sites]);
  const [editing, setEditing] = useState<string | undefined>(); // '' = new
  const [error, setError] = useState<string | undefined>();
  const write = useCan('sites.write');
  const done = (): void => {
    setEditing(undefined);
    sites.reload();
  };
  const remove = async (s: Site): Promise<void> => {
    if (!confirm(`Delete site ${s.name}?`)) return;
    try {
      await api(`/sites/${enc(s.name)}`, { method: 'DELETE' });
      sites.reload();
    } catch (err) {
      setError(describe(err));
    }
  };
  return (
    <Page
      title="Sites & subnets"
      actions={
        write && (
          <button data-action="sites.write" onClick={() => setEditing('')}>
            Add site
          </button>
        )
      }
    >
      {write && editing === '' && (
        <Card title="New site">
          <SiteForm onDone={done} />
        </Card>
      )}
      <ErrorNote error={sites.error ?? error} />
      <Card>
        <Table
          columns={['Site', 'Subnets', { label: 'Agents', class: 'num' }, { label: 'Site servers', class: 'num' }, 'Created', ...(write ? [''] : [])]}
          rows={sites.data?.items}
          empty="No sites yet. Without sites, agents use the site servers on their own subnet."
          row={(s) =>
            write && editing === s.name ? (
              <tr key={s.name}>
                <td colSpan={6}>
                  <strong>{s.name}</strong>
                  <SiteForm site={s} onDone={done} />
                </td>
              </tr>
            ) : (
              <tr key={s.name} data-site={s.name}>
                <NameCell name={s.name} sub={s.description} />
                <td>
                  {s.subnets.map((n) => (
                    <code key={n} class="chip">
                      {n}
                    </code>
                  ))}
                </td>
                <td class="num">
                  <a href={`#/agents?site=${enc(s.name)}`}>{s.agents}</a>
                </td>
                <td class="num">{s.siteServers.length}</td>
                <td>{time(s.createdAt)}</td>
                {write && (
                  <td class="row-actions">
                    <button class="link" data-action="sites.write" onClick={() => setEditing(s.name)}>
                      Edit
                    </button>
                    <button class="link danger" data-action="sites.write" onClick={() => void remove(s)}>
                      Delete
                    </button>
                  </td>
                )}
              </tr>
            )
          }
        />
      </Card>
    </Page>
  );
}
