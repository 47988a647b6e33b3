import type { AuditDraft } from './entry.js';

interface Window {
  startedAt: number;
  /** The first refusal of the window (written), the pattern of the summary. */
  first: AuditDraft;
  /** Identical refusals not written since. */
  repeated: number;
  lastAt: string;
}

/**
 * Identical refusals (same caller, address, route, object, status and code) within `windowMs` are
 * written once and counted: a client retrying with a revoked credential every few seconds,
 * or a flood of unauthenticated requests, costs one synced write per window, not one per
 * request. When the window ends, one `audit.repeated` entry says how many more there were
 * and from when to when. Changes and successful requests are never coalesced. At most
 * `maxKeys` windows are tracked; beyond, refusals are written one by one.
 */
export class RefusalCoalescer {
  readonly #windows = new Map<string, Window>();

  constructor(
    private readonly windowMs: number,
    private readonly now: () => number,
    private readonly maxKeys = 10_000,
  ) {}

  /**
   * What makes two refusals the same: caller, address, method, route, status and code, and
   * for a known caller the object too (an administrator refused on three sites is three
   * attempts; anonymous requests coalesce whatever path they try).
   */
  static key(d: AuditDraft): string {
    const object = d.actor.kind === 'anonymous' ? '' : (d.object ?? '');
    return [d.actor.kind, d.actor.admin ?? d.actor.id ?? '', d.from.address, d.method, d.route, object, d.outcome.status, d.outcome.code ?? ''].join('\u0000');
  }

  /**
   * Whether to write this refusal now. When its own window has ended, that window's summary
   * comes back in `due` (write it first); other windows end by the timer's `flush()`, so a
   * flood costs one map lookup per refusal, not a walk over every window.
   */
  admit(d: AuditDraft): { write: boolean; due: AuditDraft[] } {
    if (this.windowMs <= 0) return { write: true, due: [] };
    const key = RefusalCoalescer.key(d);
    const w = this.#windows.get(key);
    const due: AuditDraft[] = [];
    if (w && this.now() - w.startedAt >= this.windowMs) {
      this.#windows.delete(key);
      if (w.repeated > 0) due.push(summary(w));
    } else if (w) {
      w.repeated++;
      w.lastAt = d.at;
      return { write: false, due };
    }
    if (this.#windows.size < this.maxKeys) this.#windows.set(key, { startedAt: this.now(), first: d, repeated: 0, lastAt: d.at });
    return { write: true, due };
  }

  /** Ends the windows older than `windowMs` (all with `all`); the summaries to write. */
  flush(all = false): AuditDraft[] {
    const now = this.now();
    const out: AuditDraft[] = [];
    for (const [key, w] of this.#windows) {
      if (!all && now - w.startedAt < this.windowMs) continue;
      this.#windows.delete(key);
      if (w.repeated > 0) out.push(summary(w));
    }
    return out;
  }

  get size(): number {
    return this.#windows.size;
  }
}

/** The entry that sums up a window: the first refusal's who, where and outcome, and how many more. */
function summary(w: Window): AuditDraft {
  const { request: _r, before: _b, after: _a, ...pattern } = w.first;
  return { ...pattern, at: w.lastAt, action: 'audit.repeated', after: { action: w.first.action, repeated: w.repeated, from: w.first.at, until: w.lastAt } };
}
