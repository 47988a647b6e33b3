import type { ComponentChildren, JSX } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api } from './api';
import { live, type LiveState } from './live';
import { num, pct } from './format';

export function useLive(): LiveState {
  const [state, setState] = useState(live.state);
  useEffect(() => live.subscribe(setState), []);
  return state;
}

export interface Fetched<T> {
  data: T | undefined;
  error: string | undefined;
  loading: boolean;
  reload(): void;
}

/**
 * GETs `path` (undefined: nothing), again whenever `deps` change. Stale answers are
 * dropped; errors are shown, never thrown.
 */
export function useApi<T>(path: string | undefined, deps: readonly unknown[] = []): Fetched<T> {
  const [state, setState] = useState<{ data: T | undefined; error: string | undefined; loading: boolean }>({ data: undefined, error: undefined, loading: path !== undefined });
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  useEffect(() => {
    if (path === undefined) return;
    const abort = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    api<T>(path, { signal: abort.signal }).then(
      (data) => !abort.signal.aborted && setState({ data, error: undefined, loading: false }),
      (err: unknown) => !abort.signal.aborted && setState((s) => ({ data: s.data, error: describe(err), loading: false })),
    );
    return () => abort.abort();
  }, [path, tick, ...deps]);
  return { ...state, reload };
}

export function describe(err: unknown): string {
  if (err instanceof ApiError) return `${err.message} (${err.code})`;
  return err instanceof Error ? err.message : String(err);
}

/** Re-runs `fn` at most once per `ms` while `key` keeps changing (live refetches). */
export function useThrottled(key: unknown, ms: number): unknown {
  const [value, setValue] = useState(key);
  const last = useRef(0);
  useEffect(() => {
    const wait = last.current + ms - Date.now();
    if (wait <= 0) {
      last.current = Date.now();
      setValue(key);
      return;
    }
    const t = setTimeout(() => {
      last.current = Date.now();
      setValue(key);
    }, wait);
    return () => clearTimeout(t);
  }, [key, ms]);
  return value;
}

export function Page(props: { title: string; actions?: ComponentChildren; children: ComponentChildren }): JSX.Element {
  return (
    <section class="page">
      <header class="page-head">
        <h1>{props.title}</h1>
        <div class="actions">{props.actions}</div>
      </header>
      {props.children}
    </section>
  );
}

export function Card(props: { title?: ComponentChildren; children: ComponentChildren; class?: string }): JSX.Element {
  return (
    <div class={`card ${props.class ?? ''}`}>
      {props.title !== undefined && <h2>{props.title}</h2>}
      {props.children}
    </div>
  );
}

export function ErrorNote(props: { error: string | undefined }): JSX.Element | null {
  return props.error ? (
    <p class="error" role="alert">
      {props.error}
    </p>
  ) : null;
}

export function Badge(props: { state: string; children?: ComponentChildren }): JSX.Element {
  return <span class={`badge s-${props.state}`}>{props.children ?? props.state}</span>;
}

export function Stat(props: { label: string; value: number | string; state?: string; href?: string }): JSX.Element {
  const body = (
    <>
      <span class="stat-value">{typeof props.value === 'number' ? num(props.value) : props.value}</span>
      <span class="stat-label">{props.label}</span>
    </>
  );
  return props.href ? (
    <a class={`stat s-${props.state ?? 'plain'}`} href={props.href}>
      {body}
    </a>
  ) : (
    <div class={`stat s-${props.state ?? 'plain'}`}>{body}</div>
  );
}

/** A progress bar; `label` is read out and shown. */
export function Progress(props: { value: number; max: number; label?: string; state?: string }): JSX.Element {
  const p = pct(props.value, props.max);
  return (
    <div class={`progress s-${props.state ?? 'plain'}`} role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(p)} aria-label={props.label}>
      <div class="progress-fill" style={{ width: `${p}%` }} />
      <span class="progress-text">{props.label ?? `${Math.round(p)} %`}</span>
    </div>
  );
}

/** One bar split by state (a run's agents, a package's servers). */
export function StackedBar(props: { parts: Array<{ state: string; value: number }>; total: number; title?: string }): JSX.Element {
  return (
    <div class="stacked" title={props.title} role="img" aria-label={props.parts.map((p) => `${p.state} ${p.value}`).join(', ')}>
      {props.parts
        .filter((p) => p.value > 0)
        .map((p) => (
          <div key={p.state} class={`seg s-${p.state}`} style={{ width: `${pct(p.value, props.total)}%` }} />
        ))}
    </div>
  );
}

/**
 * A list that renders only the rows in view (fixed row height), so 50,000 rows scroll
 * smoothly. `onNearEnd` asks for the next page when the last rows come into view.
 */
export function VirtualList(props: { count: number; rowHeight: number; height: number; row: (i: number) => ComponentChildren; onNearEnd?: () => void; header?: ComponentChildren }): JSX.Element {
  const [top, setTop] = useState(0);
  const overscan = 8;
  const first = Math.max(0, Math.floor(top / props.rowHeight) - overscan);
  const last = Math.min(props.count, Math.ceil((top + props.height) / props.rowHeight) + overscan);
  const { onNearEnd, count } = props;
  useEffect(() => {
    if (onNearEnd && last >= count - overscan) onNearEnd();
  }, [last, count, onNearEnd]);
  const rows: ComponentChildren[] = [];
  for (let i = first; i < last; i++) {
    rows.push(
      <div key={i} class="vrow" style={{ transform: `translateY(${i * props.rowHeight}px)`, height: `${props.rowHeight}px` }}>
        {props.row(i)}
      </div>,
    );
  }
  return (
    <div class="vlist">
      {props.header && <div class="vrow vhead">{props.header}</div>}
      <div class="vscroll" style={{ height: `${props.height}px` }} onScroll={(e) => setTop((e.currentTarget as HTMLDivElement).scrollTop)}>
        <div class="vspace" style={{ height: `${props.count * props.rowHeight}px` }}>
          {rows}
        </div>
      </div>
    </div>
  );
}

/** Pages through a `{ items, next }` API (cursor `after`), appending as asked. */
export function usePaged<T>(base: string | undefined, pageSize: number, key: (t: T) => string): { items: T[]; more: boolean; error: string | undefined; loadMore: () => void; reload: () => void } {
  const [items, setItems] = useState<T[]>([]);
  const [error, setError] = useState<string | undefined>(undefined);
  const cursor = useRef<{ next: string | undefined; done: boolean }>({ next: undefined, done: false });
  const loading = useRef(false);
  const gen = useRef(0);
  const load = useCallback(
    (reset: boolean) => {
      if (base === undefined || loading.current) return;
      if (!reset && cursor.current.done) return;
      const my = gen.current;
      loading.current = true;
      const sep = base.includes('?') ? '&' : '?';
      const after = reset ? undefined : cursor.current.next;
      api<{ items: T[]; next?: string }>(`${base}${sep}limit=${pageSize}${after ? `&after=${encodeURIComponent(after)}` : ''}`).then(
        (page) => {
          // An answer of an older generation (a reload since) neither clears the flag of
          // the request now in flight nor touches the list: else a "load more" could
          // start beside the reload and append rows older than the ones it brings.
          if (my !== gen.current) return;
          loading.current = false;
          cursor.current = { next: page.next, done: page.next === undefined };
          setError(undefined);
          setItems((cur) => {
            const all = reset ? page.items : [...cur, ...page.items];
            // Keep order, drop duplicates (a row may move between pages while live).
            const seen = new Set<string>();
            return all.filter((t) => (seen.has(key(t)) ? false : (seen.add(key(t)), true)));
          });
        },
        (err: unknown) => {
          if (my !== gen.current) return;
          loading.current = false;
          setError(describe(err));
        },
      );
    },
    [base, pageSize, key],
  );
  const reload = useCallback(() => {
    gen.current++;
    loading.current = false;
    cursor.current = { next: undefined, done: false };
    load(true);
  }, [load]);
  useEffect(() => {
    setItems([]);
    reload();
  }, [base]);
  const loadMore = useCallback(() => load(false), [load]);
  return { items, more: !cursor.current.done, error, loadMore, reload };
}
