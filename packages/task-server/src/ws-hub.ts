import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '@outpost/common';
import type { WsMessage } from './protocol.js';

export const WS_PATH = '/api/v1/agent/ws';

/**
 * Agents' persistent WebSockets (push mode). The upgrade carries the same bearer as
 * HTTP calls; the hub then holds one socket per agent (a newer one replaces an older),
 * pings every `pingIntervalMs` and closes a socket that missed a pong. Wake-ups are
 * small JSON frames ({@link WsMessage}); the work itself is fetched over HTTP.
 */
export class WsHub {
  readonly stats = { connected: 0, accepted: 0, refused: 0, pushed: 0, closedIdle: 0, dropped: 0 };
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 4_096, perMessageDeflate: false });
  readonly #sockets = new Map<string, WebSocket>();
  readonly #alive = new WeakSet<WebSocket>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly authenticate: (authorization: string | undefined) => Promise<string | undefined>,
    private readonly hello: (agent: string) => Promise<WsMessage[]>,
    private readonly log: Logger,
    private readonly pingIntervalMs: number,
    /** Told when an agent gains its socket here, and when it has none left (workers tell the primary). */
    private readonly onChange?: (agent: string, open: boolean) => void,
  ) {}

  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      void this.#upgrade(req, socket, head);
    });
    this.#timer = setInterval(() => this.#ping(), this.pingIntervalMs);
    this.#timer.unref();
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    const path = (req.url ?? '').split('?')[0];
    const agent = path === WS_PATH ? await this.authenticate(req.headers.authorization).catch(() => undefined) : undefined;
    if (!agent) {
      this.stats.refused++;
      this.log.debug({ path, remote: req.socket.remoteAddress }, 'websocket upgrade refused');
      socket.end(`HTTP/1.1 ${path === WS_PATH ? '401 Unauthorized' : '404 Not Found'}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      this.stats.accepted++;
      const old = this.#sockets.get(agent);
      if (old) old.terminate();
      this.#sockets.set(agent, ws);
      this.onChange?.(agent, true);
      this.stats.connected = this.#sockets.size;
      this.#alive.add(ws);
      ws.on('pong', () => this.#alive.add(ws));
      ws.on('message', () => this.#alive.add(ws));
      ws.on('error', () => ws.terminate());
      ws.on('close', () => {
        if (this.#sockets.get(agent) === ws) {
          this.#sockets.delete(agent);
          this.onChange?.(agent, false);
        }
        this.stats.connected = this.#sockets.size;
      });
      this.hello(agent).then(
        (frames) => {
          for (const m of frames) if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(m));
        },
        (err: unknown) => this.log.debug({ err, agent }, 'websocket hello failed'),
      );
    });
  }

  #ping(): void {
    for (const ws of this.#sockets.values()) {
      if (!this.#alive.has(ws)) {
        this.stats.closedIdle++;
        ws.terminate();
        continue;
      }
      this.#alive.delete(ws);
      ws.ping();
    }
  }

  /** Closes the sockets of agents no longer allowed here (blocked, deleted, moved); how many. */
  drop(agents: Iterable<string>): number {
    let n = 0;
    for (const a of agents) {
      const ws = this.#sockets.get(a);
      if (!ws) continue;
      ws.terminate();
      n++;
    }
    this.stats.dropped += n;
    return n;
  }

  has(agent: string): boolean {
    return this.#sockets.has(agent);
  }

  /** Sends a frame to the agent; false when it holds no open socket. */
  push(agent: string, m: WsMessage): boolean {
    const ws = this.#sockets.get(agent);
    if (!ws || ws.readyState !== ws.OPEN) return false;
    ws.send(JSON.stringify(m));
    this.stats.pushed++;
    return true;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    for (const ws of this.#sockets.values()) ws.terminate();
    this.#sockets.clear();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }
}
