import type { Agent as HttpAgent } from 'node:http';
import WebSocket from 'ws';
import type { Logger } from '@outpost/common';

export interface WsClientOptions {
  /** Reconnect delays: full jitter over max(spread, base·2^n), so many agents spread out. */
  spreadMs: number;
  random?: () => number;
  /** The node:http(s) Agent to reach a URL (the agent's transport: direct or through a gateway). */
  agentFor?: (url: string) => HttpAgent;
}

/**
 * The agent's persistent WebSocket to its task server (push mode). Connects with the
 * same bearer as HTTP calls, hands each JSON frame to `onMessage`, answers pings (the
 * ws library does), and reconnects after a drop with a jittered delay spread over at
 * least `spreadMs`, so 15,000 agents losing one server do not return at once.
 */
export class WsClient {
  readonly stats = { connects: 0, drops: 0, frames: 0 };
  #ws: WebSocket | undefined;
  #timer: NodeJS.Timeout | undefined;
  #target: { url: string; bearer: string } | undefined;
  #failures = 0;
  #open = false;

  constructor(
    private readonly options: WsClientOptions,
    private readonly onMessage: (m: { t?: unknown; pollAfterMs?: unknown }) => void,
    private readonly log: Logger,
  ) {}

  get connected(): boolean {
    return this.#open;
  }

  /** Connects (or re-targets) to `baseUrl`'s `/api/v1/agent/ws`; undefined disconnects. */
  set(target: { url: string; bearer: string } | undefined): void {
    if (target?.url === this.#target?.url && target?.bearer === this.#target?.bearer) return;
    this.#target = target;
    this.#close();
    if (target) this.#connect();
  }

  #connect(): void {
    const t = this.#target;
    if (!t) return;
    const url = `${t.url.replace(/^http/, 'ws').replace(/\/+$/, '')}/api/v1/agent/ws`;
    const agent = this.options.agentFor?.(t.url);
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${t.bearer}` }, handshakeTimeout: 10_000, perMessageDeflate: false, ...(agent ? { agent } : {}) });
    this.#ws = ws;
    ws.on('open', () => {
      this.#open = true;
      this.#failures = 0;
      this.stats.connects++;
    });
    ws.on('message', (data) => {
      this.stats.frames++;
      try {
        const m: unknown = JSON.parse(String(data));
        if (m && typeof m === 'object') this.onMessage(m as { t?: unknown });
      } catch {
        // Not a frame we understand: ignore.
      }
    });
    ws.on('error', (err) => this.log.debug({ err: err.message }, 'task websocket error'));
    ws.on('close', () => {
      if (this.#ws !== ws) return;
      this.#ws = undefined;
      if (this.#open) this.stats.drops++;
      this.#open = false;
      const random = this.options.random ?? Math.random;
      const span = Math.max(this.options.spreadMs, Math.min(600_000, 1_000 * 2 ** this.#failures++));
      this.#timer = setTimeout(() => this.#connect(), Math.round(random() * span));
      this.#timer.unref();
    });
  }

  #close(): void {
    clearTimeout(this.#timer);
    const ws = this.#ws;
    this.#ws = undefined;
    this.#open = false;
    ws?.terminate();
  }

  stop(): void {
    this.#target = undefined;
    this.#close();
  }
}
