import { backoffDelay, type Logger } from '@outpost/common';
import { isCoreHttpError } from '../errors.js';

export interface DownloadReportRetry {
  /** First wait before sending again. @default 500 */
  baseMs?: number;
  /** Longest wait between two attempts. @default 30_000 */
  capMs?: number;
  /** Given up this long after the first attempt. @default 900_000 (15 min) */
  deadlineMs?: number;
}

export interface DownloadReportSending {
  /** Settles after the first attempt: whether the core took the report then. */
  first: Promise<boolean>;
  /** Settles when the core took the report (true) or it was given up (false): refused (4xx), past the deadline, or aborted. */
  done: Promise<boolean>;
}

/** The core could not take it now (unreachable, or a 5xx such as 503 CORE_STORE_UNAVAILABLE): worth sending again. */
const retryable = (err: unknown): boolean => !isCoreHttpError(err) || err.httpStatus >= 500;

/**
 * Sends a download status to the core, and while the core cannot take it sends it again
 * with backoff, in the background (timers unref'd), until the deadline or `signal`. A
 * database outage at the core then delays the report instead of losing it. Sending
 * twice is harmless: the core keeps one status per package and agent.
 */
export function sendDownloadReport(send: () => Promise<unknown>, o: { log: Logger; signal?: AbortSignal | undefined; retry?: DownloadReportRetry | undefined }): DownloadReportSending {
  const baseMs = o.retry?.baseMs ?? 500;
  const capMs = o.retry?.capMs ?? 30_000;
  const deadline = Date.now() + (o.retry?.deadlineMs ?? 900_000);
  let settleFirst: (ok: boolean) => void = () => undefined;
  const first = new Promise<boolean>((resolve) => (settleFirst = resolve));
  const done = (async (): Promise<boolean> => {
    for (let attempt = 0; ; attempt++) {
      try {
        await send();
        settleFirst(true);
        if (attempt > 0) o.log.info({ attempts: attempt + 1 }, 'download status reported');
        return true;
      } catch (err) {
        settleFirst(false);
        const delay = backoffDelay(attempt, { baseMs, capMs });
        const again = retryable(err) && !o.signal?.aborted && Date.now() + delay <= deadline;
        const code = isCoreHttpError(err) ? (err.coreCode ?? `HTTP_${err.httpStatus}`) : (err as { code?: string }).code;
        if (attempt === 0 || !again) o.log.warn({ code, err: (err as Error).message, attempt, retryInMs: again ? delay : undefined }, again ? 'could not report the download status; will retry' : 'could not report the download status; given up');
        if (!again) return false;
        await new Promise<void>((resolve) => setTimeout(resolve, delay).unref());
      }
    }
  })();
  return { first, done };
}
