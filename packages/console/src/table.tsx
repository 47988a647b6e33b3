import type { ComponentChildren, JSX } from 'preact';
import { enc } from './api';
import { num } from './format';
import { RUN_STATES, type Counts } from './types';
import { StackedBar } from './ui';

/** A column heading: its label, or the label and a class (`num` right-aligns, `wide`). */
export type Column = string | { label: string; class: string };

/**
 * The pages' data table: one heading row (none without `columns`), a row per item, and
 * `empty` in one full-width muted row once the items are loaded (`rows` defined) and
 * there are none.
 */
export function Table<T>(props: { columns?: Column[]; rows: readonly T[] | undefined; row: (item: T, index: number) => ComponentChildren; empty?: ComponentChildren }): JSX.Element {
  const columns = props.columns ?? [];
  return (
    <table class="table">
      {columns.length > 0 && (
        <thead>
          <tr>
            {columns.map((c, i) => (typeof c === 'string' ? <th key={i}>{c}</th> : <th key={i} class={c.class}>{c.label}</th>))}
          </tr>
        </thead>
      )}
      <tbody>
        {(props.rows ?? []).map(props.row)}
        {props.empty !== undefined && props.rows?.length === 0 && (
          <tr>
            <td colSpan={columns.length} class="muted">
              {props.empty}
            </td>
          </tr>
        )}
      </tbody>
    </table>
  );
}

/** A table cell naming a thing: its name in bold, a muted line under it when there is one. */
export function NameCell(props: { name: ComponentChildren; sub?: ComponentChildren }): JSX.Element {
  return (
    <td>
      <strong>{props.name}</strong>
      {props.sub ? <div class="muted small">{props.sub}</div> : null}
    </td>
  );
}

/** Agents of a run that are done, whatever the outcome. */
export const finished = (c: Counts): number => c.succeeded + c.failed + c.expired + c.cancelled;

/** A run's row cells: the job (linking to the run) over its id, its agents by state, and how many are done. */
export function RunCells(props: { run: { id: string; job: string; agents: number; counts: Counts }; state?: ComponentChildren }): JSX.Element {
  const r = props.run;
  return (
    <>
      <td>
        <a href={`#/runs/${enc(r.id)}`}>{r.job}</a>
        <div class="muted small">{r.id}</div>
      </td>
      {props.state !== undefined && <td>{props.state}</td>}
      <td class="wide">
        <StackedBar total={r.agents} parts={RUN_STATES.map((s) => ({ state: s, value: r.counts[s] }))} />
      </td>
      <td class="num">
        {num(finished(r.counts))} / {num(r.agents)}
      </td>
    </>
  );
}
