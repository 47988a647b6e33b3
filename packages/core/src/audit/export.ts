import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { open, type FileHandle } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { hostname } from 'node:os';
import type { Logger } from '@outpost/common';
import { SYSLOG_FACILITIES, type AuditConfig, type SyslogExportConfig } from './config.js';
import type { AuditEntry } from './entry.js';

/** Export counters, by target. */
export interface ExportStats {
  exported: { file: number; syslog: number };
  failures: { file: number; syslog: number };
}

/** Largest syslog message sent over UDP: bigger entries go without request/before/after. */
const UDP_MAX = 60_000;
/** Messages held while the TCP receiver is away; older ones are dropped (and counted). */
const TCP_QUEUE = 10_000;

/** JSON with every non-ASCII character escaped, so a syslog MSG is plain ASCII. */
export function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Syslog severity of an entry: info when it went through, warning when refused, notice when it failed. */
function severity(e: AuditEntry): number {
  return e.outcome.result === 'ok' ? 6 : e.outcome.result === 'refused' ? 4 : 5;
}

const sdEscape = (s: string): string => s.replace(/["\\\]]/g, (c) => `\\${c}`);

/**
 * One entry as an RFC 5424 message:
 *
 *   <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [audit@32473 seq="N" result="R"] JSON
 *
 * PRI = facility × 8 + severity (info ok, warning refused, notice failed); MSGID is the
 * action (32 printable characters at most); the structured data uses the documentation
 * enterprise number 32473 (RFC 5612); MSG is the entry's JSON, ASCII only.
 */
export function syslogMessage(e: AuditEntry, options: { facility: keyof typeof SYSLOG_FACILITIES; appName: string; host?: string; pid?: number }, maxBytes = Infinity): string {
  const pri = SYSLOG_FACILITIES[options.facility] * 8 + severity(e);
  const host = (options.host ?? hostname()).replace(/[^!-~]/g, '').slice(0, 255) || '-';
  const msgid = e.action.replace(/[^!-~]/g, '').slice(0, 32) || '-';
  const header = `<${pri}>1 ${e.at} ${host} ${options.appName} ${options.pid ?? process.pid} ${msgid} [audit@32473 seq="${e.seq}" result="${sdEscape(e.outcome.result)}"] `;
  let msg = asciiJson(e);
  if (header.length + msg.length > maxBytes) {
    const { request: _r, before: _b, after: _a, ...rest } = e;
    msg = asciiJson({ ...rest, truncated: true });
  }
  return header + msg;
}

/**
 * Sends committed entries on: one JSON line each to a file (created mode 0600), and/or
 * RFC 5424 syslog over UDP or TCP (RFC 6587 octet counting). Never blocks or fails the
 * API: failures are counted and logged (once a minute at most per target).
 */
export class AuditExporter {
  readonly stats: ExportStats = { exported: { file: 0, syslog: 0 }, failures: { file: 0, syslog: 0 } };
  #file: Promise<FileHandle> | undefined;
  #fileChain: Promise<void> = Promise.resolve();
  #udp: UdpSocket | undefined;
  #tcp: Socket | undefined;
  #tcpConnected = false;
  #tcpQueue: string[] = [];
  #tcpRetry: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #lastLog = { file: 0, syslog: 0 };

  constructor(
    private readonly config: AuditConfig['export'],
    private readonly log: Logger,
  ) {}

  get enabled(): boolean {
    return this.config.file !== undefined || this.config.syslog !== undefined;
  }

  export(e: AuditEntry): void {
    if (this.#closed) return;
    if (this.config.file !== undefined) this.#toFile(this.config.file, e);
    if (this.config.syslog) {
      try {
        this.#toSyslog(this.config.syslog, e);
      } catch (err) {
        this.#failed('syslog', err);
      }
    }
  }

  #failed(target: 'file' | 'syslog', err: unknown): void {
    this.stats.failures[target]++;
    const now = Date.now();
    if (now - this.#lastLog[target] > 60_000) {
      this.#lastLog[target] = now;
      this.log.error({ err, target, failures: this.stats.failures[target] }, 'audit export failed');
    }
  }

  #toFile(path: string, e: AuditEntry): void {
    const line = `${JSON.stringify(e)}\n`;
    this.#fileChain = this.#fileChain.then(async () => {
      try {
        this.#file ??= open(path, 'a', 0o600);
        const fh = await this.#file;
        await fh.appendFile(line);
        this.stats.exported.file++;
      } catch (err) {
        this.#file = undefined;
        this.#failed('file', err);
      }
    });
  }

  #toSyslog(sc: SyslogExportConfig, e: AuditEntry): void {
    if (sc.protocol === 'udp') {
      const msg = Buffer.from(syslogMessage(e, sc, UDP_MAX));
      if (!this.#udp) {
        this.#udp = createSocket(sc.host.includes(':') ? 'udp6' : 'udp4');
        this.#udp.on('error', (err) => this.#failed('syslog', err));
        this.#udp.unref();
      }
      this.#udp.send(msg, sc.port, sc.host, (err) => (err ? this.#failed('syslog', err) : this.stats.exported.syslog++));
      return;
    }
    const msg = syslogMessage(e, sc);
    this.#tcpQueue.push(`${Buffer.byteLength(msg)} ${msg}`);
    if (this.#tcpQueue.length > TCP_QUEUE) {
      this.#tcpQueue.shift();
      this.#failed('syslog', new Error('the syslog receiver is away: dropped the oldest message'));
    }
    this.#flushTcp(sc);
  }

  #flushTcp(sc: SyslogExportConfig): void {
    if (this.#closed) return;
    if (!this.#tcp) {
      const s = connect({ host: sc.host, port: sc.port });
      this.#tcp = s;
      s.unref();
      s.setNoDelay(true);
      s.on('connect', () => {
        this.#tcpConnected = true;
        this.#flushTcp(sc);
      });
      s.on('error', (err) => this.#failed('syslog', err));
      s.on('close', () => {
        this.#tcp = undefined;
        this.#tcpConnected = false;
        if (!this.#closed && this.#tcpQueue.length > 0 && !this.#tcpRetry) {
          this.#tcpRetry = setTimeout(() => {
            this.#tcpRetry = undefined;
            this.#flushTcp(sc);
          }, 2_000);
          this.#tcpRetry.unref();
        }
      });
      return;
    }
    if (!this.#tcpConnected) return;
    const s = this.#tcp;
    for (const frame of this.#tcpQueue.splice(0)) {
      s.write(frame);
      this.stats.exported.syslog++;
    }
  }

  /** Waits for file writes in flight, then closes the file and sockets. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#fileChain;
    clearTimeout(this.#tcpRetry);
    const fh = this.#file;
    this.#file = undefined;
    await fh?.then((f) => f.close()).catch(() => undefined);
    this.#udp?.close();
    this.#udp = undefined;
    if (this.#tcp) {
      const s = this.#tcp;
      await new Promise<void>((resolve) => {
        s.once('close', () => resolve());
        s.end();
        setTimeout(() => {
          s.destroy();
          resolve();
        }, 1_000).unref();
      });
    }
  }
}
