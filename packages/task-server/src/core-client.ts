/**
 * The task server's calls to the core's API, as the outbox and the sync make them: the
 * site link's client (`@outpost/common/site-link`). A transport failure is
 * `TASK_CORE_UNREACHABLE`; an error answer is `TASK_CORE_ERROR` with the core's code in
 * `details.coreCode` and its status in `details.status`.
 */
export interface CoreClient {
  /** `METHOD <core>/api/v1<path>`; the parsed JSON answer (undefined for 204). */
  call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown>;
  bearer: string;
}
