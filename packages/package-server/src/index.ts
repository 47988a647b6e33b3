export { createPackageServer, type PackageServer, type PackageServerDeps } from './package-server.js';
export { packageServerConfigSchema, type PackageServerConfig, type PackageServerConfigInput } from './config.js';
export { PackageServerErrors } from './errors.js';
export { resolvePath, type Resolved, type ServeCounters } from './http-server.js';
export { TokenBucket } from '@outpost/common';
export { fetchFile, encodePath } from './fetcher.js';
export { loadPackageServerIdentity } from './package-server.js';
