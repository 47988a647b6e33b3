export { createGateway, type Gateway, type GatewayDeps, type TunnelView } from './gateway.js';
export { gatewayConfigSchema, type GatewayConfig, type GatewayConfigInput } from './config.js';
export { GatewayErrors, GatewayError, type GatewayErrorCode } from './errors.js';
export { decodeRequestHead, parseAuthority, encodeRefusal, type RequestHead, type HeadResult } from './request-head.js';
export { Admission } from './admission.js';
export { openFilesLimit, fdsNeeded } from './limits.js';
