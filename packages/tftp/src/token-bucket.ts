import { TokenBucket } from '@outpost/common/throttle';

export type { TokenBucket };

/**
 * TFTP's pacing: common's token bucket with a burst of 1/8 s of the rate (at least one
 * large packet), so a rate-limited transfer sends evenly rather than a second's worth at
 * once. From the subpath: transfer worker threads load nothing else of common.
 */
export function sendBucket(bytesPerSec: number, now?: () => number): TokenBucket {
  return new TokenBucket(bytesPerSec, { burst: Math.max(bytesPerSec / 8, 1500), ...(now ? { now } : {}) });
}
