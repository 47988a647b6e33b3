import { readFile } from 'node:fs/promises';
import { OutpostError } from '@outpost/common';
import type { TaskServerConfig } from './config.js';
import type { CoreClient } from './core-client.js';
import { TaskServerErrors } from './errors.js';
import type { IdentityRecord, TsStore } from './store.js';

export interface EnrollInfo {
  url: string;
  tickleAddress: string;
}

/**
 * Loads the task server's identity from its database or enrolls with the core as a
 * site server running the task service (`services.task.url`, `tickleAddress`).
 */
export async function loadOrEnroll(config: TaskServerConfig, store: TsStore, core: CoreClient, info: EnrollInfo, mint?: () => Promise<string>): Promise<IdentityRecord> {
  const stored = (await store.meta.get('identity')) as IdentityRecord | undefined;
  if (stored) return stored;
  let token = config.enrollToken;
  if (!token && config.enrollTokenFile) token = (await readFile(config.enrollTokenFile, 'utf8')).split(/\r?\n/, 1)[0]?.trim();
  if (!token && mint) token = await mint();
  if (!token) {
    throw new OutpostError(TaskServerErrors.NO_ENROLL_TOKEN, `no task-server identity in ${config.dataDir} and no enrollToken or enrollTokenFile to enroll with`);
  }
  let res: { id?: unknown; credential?: unknown };
  try {
    res = (await core.call('POST', '/enroll', {
      token,
      name: config.name,
      ...(config.address ? { address: config.address } : {}),
      tickleAddress: info.tickleAddress,
      services: { task: { url: info.url } },
    })) as typeof res;
  } catch (err) {
    const status = (err as { details?: { status?: number } }).details?.status;
    if (status !== undefined && status >= 400 && status < 500) {
      throw new OutpostError(TaskServerErrors.ENROLL_REJECTED, `the core refused to enroll this task server: ${(err as Error).message}`, { cause: err });
    }
    throw err;
  }
  if (typeof res.id !== 'string' || typeof res.credential !== 'string') {
    throw new OutpostError(TaskServerErrors.CORE_ERROR, 'the core answered the enrollment without an id and credential');
  }
  const id: IdentityRecord = { id: res.id, credential: res.credential, coreUrl: config.coreUrl };
  await store.meta.put('identity', id);
  return id;
}
