import type { JSX } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api } from '../api';
import { actorText, filterFrom, filterQuery, matches, merge, type AuditEntry, type AuditFilter, type AuditVerify } from '../audit';
import { time } from '../format';
import { navigate } from '../router';
import { endSessionOn401 } from '../session';
import { backoffMs, readEvents } from '../sse';
import { Table } from '../table';
import { Badge, Card, ErrorNote, Page, describe } from '../ui';

const PAGE = 100;
const KEEP = 2_000;

/** Entries as the filters select them: a first page, older pages on demand, and new ones from the stream. */
function useAuditLog(filter: AuditFilter): { items: AuditEntry[]; more: boolean; error: string | undefined; live: boolean; loadOlder: () => void } {
  const [items, setItems] = useState<AuditEntry[]>([]);
  const [next, setNext] = useState<string | number | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [live, setLive] = useState(false);
  const gen = useRef(0);
  const key = filterQuery(filter).toString();
  const load = useCallback(
    (before: string | number | undefined) => {
      const my = gen.current;
      const q = filterQuery(filter);
      q.set('limit', String(PAGE));
      if (before !== undefined) q.set('before', String(before));
      api<{ items: AuditEntry[]; next?: string | number }>(`/audit?${q}`).then(
        (page) => {
          if (my !== gen.current) return;
          setError(undefined);
          // Entries the stream brought while the page loaded stay (they are newer).
          setItems((cur) => merge(cur, page.items).slice(0, before !== undefined ? undefined : KEEP));
          setNext(page.next);
        },
        (err: unknown) => my === gen.current && setError(describe(err)),
      );
    },
    [key],
  );
  /** From the first page again: the filters changed, or the stream reconnected (entries may have been missed). */
  const reset = useCallback(() => {
    gen.current++;
    setItems([]);
    setNext(undefined);
    load(undefined);
  }, [load]);
  useEffect(reset, [key]);
  useEffect(() => {
    const abort = new AbortController();
    void (async () => {
      let failures = 0;
      while (!abort.signal.aborted) {
        try {
          await readEvents('/audit/stream', abort.signal, {
            onOpen: () => {
              if (failures > 0) reset();
              failures = 0;
              setLive(true);
            },
            onEvent: (event, data) => {
              if (event !== 'audit') return;
              try {
                const e = JSON.parse(data) as AuditEntry;
                if (matches(e, filter)) setItems((cur) => merge([e], cur).slice(0, KEEP));
              } catch {
                // A malformed frame: skip it.
              }
            },
          });
        } catch (err) {
          if (abort.signal.aborted) return;
          if (err instanceof ApiError && err.status === 401) return endSessionOn401(err);
          if (err instanceof ApiError && (err.status === 403 || err.status === 404)) {
            setError(describe(err));
            setLive(false);
            return;
          }
        }
        if (abort.signal.aborted) return;
        setLive(false);
        failures++;
        await new Promise((r) => setTimeout(r, backoffMs(failures)));
      }
    })();
    return () => abort.abort();
  }, [key]);
  return { items, more: next !== undefined, error, live, loadOlder: () => next !== undefined && load(next) };
}

function Filters(props: { filter: AuditFilter }): JSX.Element {
  const [admin, setAdmin] = useState(props.filter.admin);
  const [action, setAction] = useState(props.filter.action);
  // The filters as the address has them now: a typed filter's delayed update must not
  // undo a choice made meanwhile.
  const current = useRef(props.filter);
  current.current = props.filter;
  const set = (patch: Partial<AuditFilter>): void => {
    const q = filterQuery({ ...current.current, ...patch });
    navigate(`#/audit${q.size ? `?${q}` : ''}`);
  };
  // Typed filters apply a moment after the last key.
  useEffect(() => {
    if (admin === props.filter.admin && action === props.filter.action) return;
    const t = setTimeout(() => set({ admin: admin.trim(), action: action.trim() }), 300);
    return () => clearTimeout(t);
  }, [admin, action]);
  const sinceLocal = props.filter.since ? toLocalInput(props.filter.since) : '';
  return (
    <div class="filters" role="search" aria-label="Audit filters">
      <input aria-label="Administrator" placeholder="administrator" value={admin} onInput={(e) => setAdmin((e.currentTarget as HTMLInputElement).value)} />
      <input aria-label="Action prefix" placeholder="action prefix (sites.)" value={action} onInput={(e) => setAction((e.currentTarget as HTMLInputElement).value)} />
      <select aria-label="Result" value={props.filter.result} onChange={(e) => set({ result: (e.currentTarget as HTMLSelectElement).value })}>
        <option value="">any result</option>
        <option value="ok">ok</option>
        <option value="refused">refused</option>
        <option value="failed">failed</option>
      </select>
      <label class="inline-label">
        since
        <input
          type="datetime-local"
          aria-label="Since"
          value={sinceLocal}
          onChange={(e) => {
            const v = (e.currentTarget as HTMLInputElement).value;
            const t = v ? new Date(v) : undefined;
            set({ since: t && !Number.isNaN(t.getTime()) ? t.toISOString() : '' });
          }}
        />
      </label>
    </div>
  );
}

/** An ISO time as a `datetime-local` value in this browser's zone. */
function toLocalInput(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

const RESULT_STATE: Record<string, string> = { ok: 'succeeded', refused: 'expired', failed: 'failed' };

function Outcome(props: { e: AuditEntry }): JSX.Element {
  const o = props.e.outcome;
  return (
    <>
      <Badge state={RESULT_STATE[o.result] ?? 'plain'}>{o.result}</Badge> <span class="muted small">{o.status}</span> {o.code && <code class="small">{o.code}</code>}
    </>
  );
}

const json = (v: unknown): string => JSON.stringify(v, null, 2);

function Details(props: { e: AuditEntry }): JSX.Element {
  const e = props.e;
  return (
    <div class="audit-details" data-testid="audit-details">
      <dl class="kv">
        <dt>Entry</dt>
        <dd>
          #{e.seq} at {time(e.at)}
        </dd>
        <dt>Request</dt>
        <dd>
          <code>
            {e.method} {e.route}
          </code>{' '}
          <span class="muted small">request id {e.from.requestId}</span>
        </dd>
        <dt>Who</dt>
        <dd>
          {actorText(e)} <span class="muted small">({[e.actor.kind, e.actor.via, e.actor.credential].filter(Boolean).join(', ')})</span>
        </dd>
        <dt>Hash</dt>
        <dd>
          <code class="small">{e.hash}</code> <span class="muted small">after {e.prev}</span>
        </dd>
      </dl>
      <div class="grid two">
        <div>
          <h3>Before</h3>
          {e.before === undefined ? <p class="muted">–</p> : <pre class="output">{json(e.before)}</pre>}
        </div>
        <div>
          <h3>After</h3>
          {e.after === undefined ? <p class="muted">–</p> : <pre class="output">{json(e.after)}</pre>}
        </div>
      </div>
      {e.request !== undefined && (
        <>
          <h3>Request body</h3>
          <pre class="output">{json(e.request)}</pre>
        </>
      )}
    </div>
  );
}

function Verify(): JSX.Element {
  const [result, setResult] = useState<AuditVerify | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const verify = async (): Promise<void> => {
    setBusy(true);
    setError(undefined);
    try {
      setResult(await api<AuditVerify>('/audit/verify'));
    } catch (err) {
      setError(describe(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="verify">
      <button class="secondary" onClick={() => void verify()} disabled={busy}>
        {busy ? 'Verifying…' : 'Verify chain'}
      </button>
      {result && (
        <span class={result.ok ? 'ok' : 'error'} role="status" data-testid="audit-verify">
          {result.ok
            ? `Chain intact: ${result.entries} entries${result.first !== undefined ? ` (#${result.first}–#${result.last})` : ''}.`
            : `Chain broken at entry #${result.broken?.seq ?? '?'}: ${result.broken?.reason ?? 'unknown'} (${result.entries} entries checked).`}
        </span>
      )}
      <ErrorNote error={error} />
    </div>
  );
}

export function Audit(props: { query: URLSearchParams }): JSX.Element {
  const filter = filterFrom(props.query);
  const log = useAuditLog(filter);
  const [open, setOpen] = useState<number | undefined>();
  return (
    <Page title="Audit log" actions={<Verify />}>
      <Filters filter={filter} />
      <ErrorNote error={log.error} />
      <Card class="flush">
        <p class="muted small audit-live">
          <span class={`dot ${log.live ? 'on' : 'off'}`} /> {log.live ? 'new entries appear as they are recorded' : 'connecting to the audit stream…'}
        </p>
        <Table
          columns={['Time', 'Who', 'From', 'Action', 'Object', 'Outcome']}
          rows={log.items}
          empty="No entries match."
          row={(e) => [
            <tr key={e.seq} class={`clickable ${open === e.seq ? 'selected' : ''}`} data-seq={e.seq} data-audit-action={e.action} onClick={() => setOpen(open === e.seq ? undefined : e.seq)}>
              <td>{time(e.at)}</td>
              <td>
                <strong>{actorText(e)}</strong>
                {e.actor.via && <div class="muted small">{e.actor.via}</div>}
              </td>
              <td>{e.from.address}</td>
              <td>
                <code>{e.action}</code>
              </td>
              <td>{e.object ?? '–'}</td>
              <td>
                <Outcome e={e} />
              </td>
            </tr>,
            open === e.seq && (
              <tr key={`${e.seq}-d`}>
                <td colSpan={6}>
                  <Details e={e} />
                </td>
              </tr>
            ),
          ]}
        />
        {log.more && (
          <p class="center">
            <button class="secondary" onClick={log.loadOlder}>
              Load older
            </button>
          </p>
        )}
      </Card>
    </Page>
  );
}
