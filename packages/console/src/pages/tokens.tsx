import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { api, enc } from '../api';
import { ago, time } from '../format';
import { useCan } from '../session';
import { Table } from '../table';
import { Card, ErrorNote, Page, describe, useApi } from '../ui';

interface EnrollmentToken {
  id: string;
  for: 'agent' | 'site-server';
  uses: number;
  usesLeft: number;
  expiresAt: string;
  createdAt: string;
  note?: string;
}

/** Makes an agent enrollment token (site servers need a grant: `outpost token create --for site-server`). */
function CreateToken(props: { onCreated: (token: string) => void }): JSX.Element {
  const [uses, setUses] = useState('1');
  const [expires, setExpires] = useState('24h');
  const [note, setNote] = useState('');
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const out = await api<{ token: string }>('/tokens', { method: 'POST', body: { for: 'agent', uses: Number(uses), expires: expires.trim(), ...(note.trim() ? { note: note.trim() } : {}) } });
      props.onCreated(out.token);
    } catch (err) {
      setError(describe(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="form inline" data-action="tokens.write" aria-label="Create an agent token" onSubmit={(e) => void submit(e)}>
      <label>
        Uses
        <input name="uses" type="number" min={1} value={uses} onInput={(e) => setUses((e.currentTarget as HTMLInputElement).value)} />
      </label>
      <label>
        Expires after
        <input name="expires" value={expires} onInput={(e) => setExpires((e.currentTarget as HTMLInputElement).value)} placeholder="24h" />
      </label>
      <label class="grow">
        Note
        <input name="note" value={note} onInput={(e) => setNote((e.currentTarget as HTMLInputElement).value)} />
      </label>
      <button type="submit" disabled={busy}>
        Create agent token
      </button>
      <ErrorNote error={error} />
    </form>
  );
}

export function Tokens(): JSX.Element {
  const list = useApi<{ items: EnrollmentToken[] }>('/tokens');
  const write = useCan('tokens.write');
  const [shown, setShown] = useState<string | undefined>();
  const [error, setError] = useState<string | undefined>();
  const remove = async (t: EnrollmentToken): Promise<void> => {
    if (!confirm(`Delete enrollment token ${t.id}?`)) return;
    try {
      await api(`/tokens/${enc(t.id)}`, { method: 'DELETE' });
      list.reload();
    } catch (err) {
      setError(describe(err));
    }
  };
  return (
    <Page title="Enrollment tokens">
      {write && (
        <Card title="New agent token">
          <CreateToken
            onCreated={(t) => {
              setShown(t);
              list.reload();
            }}
          />
          {shown && (
            <p>
              The token, shown once: <code data-testid="new-token">{shown}</code>
            </p>
          )}
          <p class="muted small">
            Site server tokens carry a grant: <code>outpost token create --for site-server</code>.
          </p>
        </Card>
      )}
      <ErrorNote error={list.error ?? error} />
      <Card>
        <Table
          columns={['Token', 'For', { label: 'Uses left', class: 'num' }, 'Expires', 'Created', ...(write ? [''] : [])]}
          rows={list.data?.items}
          empty="No enrollment tokens."
          row={(t) => (
            <tr key={t.id} data-token={t.id}>
              <td>
                <code>{t.id}</code>
                {t.note && <div class="muted small">{t.note}</div>}
              </td>
              <td>{t.for}</td>
              <td class="num">
                {t.usesLeft} / {t.uses}
              </td>
              <td>{ago(t.expiresAt)}</td>
              <td>{time(t.createdAt)}</td>
              {write && (
                <td class="row-actions">
                  <button class="link danger" data-action="tokens.write" onClick={() => void remove(t)}>
                    Delete
                  </button>
                </td>
              )}
            </tr>
          )}
        />
      </Card>
    </Page>
  );
}
