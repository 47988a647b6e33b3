export { createNetboot, firstIpv4, type Netboot, type NetbootDeps, type DhcpStatus } from './netboot.js';
export { netbootConfigSchema, parseNetbootConfig, DEFAULT_LOADERS, HTTP_ARCHS, type NetbootConfig, type NetbootConfigInput, type Option43Mode } from './config.js';
export { NetbootError, NetbootErrors, type NetbootErrorCode } from './errors.js';
export { CoreClient, type BootBackend, type BootDecision, type BootEventOut, type BootImageInfo, type Manifest } from './core-client.js';
export { LoaderTable, archName, ARCH_NAMES } from './arch.js';
export { planBoot, buildReply, replyDestination, scriptUrl, withBootToken, macSlug, option43For, type PxeRequest, type ResponderSettings } from './responder.js';
export { withBase } from './http-server.js';
export { parseRange, type RangeResult } from './http-range.js';
export { FALLBACK_SCRIPT, UNTOKENED_SCRIPT } from './decisions.js';
export { BootTokens, BOOT_TOKEN, type BootTokenCheck } from './boot-tokens.js';
export { BoundedMap, TokenBucket, ReplyLimiter, Slots } from './limits.js';
export { macFromArp } from './arp.js';
// Wire codec: DHCP/BOOTP messages and options (tests, benchmarks, tools).
export * from './dhcp/index.js';
