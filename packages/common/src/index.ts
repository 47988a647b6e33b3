export { OutpostError, isOutpostError, CommonErrors } from './errors.js';
export { readConfigFile, applyEnvOverrides, validateConfig, loadConfig, type RawConfig, type ConfigSource, type ConfigProblem } from './config.js';
export { createLogger, silentLogger, type Logger, type LoggerOptions } from './logger.js';
export { DURABLE, openDatabase, sublevel, getJson, allValues, type Database, type Sublevel, type BatchOp } from './db.js';
export { PRIVATE_UMASK, usePrivateUmask, findLoosePaths, warnLooseDataDirs, type LoosePath, type LooseCheckOptions } from './data-dir.js';
export { writeFileAtomic, type AtomicWriteOptions } from './atomic-file.js';
export { parseDuration } from './duration.js';
export { durationSchema, duration, portSchema, coreUrls } from './config-schema.js';
export { newSecret, newId, hashSecret, datagramKey, hexEqual, formatCredential, parseCredential, type Credential } from './secrets.js';
export { agentTaskKey, taskBearerSecret } from './task-key.js';
export { backoffDelay, type BackoffOptions } from './backoff.js';
export { parseIp, parseCidr, cidrContains, mostSpecific, type Cidr, type IpAddress, type IpFamily } from './cidr.js';
export { lifecycle, type Service } from './lifecycle.js';
export { serialRunner, type SerialRunner } from './serial.js';
export {
  encodeDatagram,
  decodeDatagram,
  verifyDatagram,
  DatagramType,
  TickleFlags,
  MAX_DATAGRAM,
  MAX_PAYLOAD,
  MAX_SENDER_ID,
  type Datagram,
  type DecodedDatagram,
  type DatagramDecodeError,
  type DecodeResult,
} from './datagram/codec.js';
export { ReplayGuard, DatagramStamper, type ReplayVerdict, type ReplayGuardOptions } from './datagram/replay.js';
export { openDatagram, type OpenResult, type DropReason } from './datagram/open.js';
export { createHttpApp, mountRouter, type HttpAppOptions } from './http/app.js';
export { readJson, readBodyText, parseJsonBody, validate, zodProblems, DEFAULT_BODY_LIMIT } from './http/body.js';
export { anyPrincipal, bearerAuth, declare, publicRoute, requireKind, type DeclaredMiddleware, type RouteDeclaration } from './http/auth.js';
export { listenHttp, urlHost, type Listening, type ListenTlsOptions } from './http/listen.js';
export { parseRange, type RangeResult } from './http/range.js';
export { BufferPool, FileReadError, sendFileRange } from './http/send-file.js';
export { TokenBucket, type TokenBucketOptions } from './http/throttle.js';
export { CoreJsonClient, coreCallHeaders, type CoreJsonClientOptions, type CoreAttempt, type CoreCall, type CoreMethod, type CoreNotJson, type CoreUnreachable, type CoreErrorAnswer } from './http/core-client.js';
export type { AppState, AppContext, RouteContext, Principal, AdminIdentity, AdminVia, AuditNote } from './http/context.js';
export { z } from 'zod';
export { createKeyAndCsr, type KeyAndCsr } from './tls/csr.js';
export { runCapped, type CappedRunOptions, type CappedRunOutcome } from './process/run-capped.js';
export { aggregateMetrics, createServiceMetrics, levelDbBytes, type MetricsJson, type ServiceMetrics, type MetricsOptions, type MetricSource } from './metrics.js';
export {
  TASK_EVENT_STATES,
  taskStatusEventSchema,
  taskEventId,
  WORK_REFUSAL_REASONS,
  agentTaskSpecSchema,
  agentRunStepSchema,
  workRunSchema,
  workResponseSchema,
  pendingRunSchema,
  pendingPageSchema,
  agentConfigDocSchema,
  workKeyAnswerSchema,
  taskAgentKeysPageSchema,
  taskAgentKeySchema,
  eventsAnswerSchema,
  type EventsAnswer,
  type TaskEventState,
  type TaskStatusEvent,
  type WorkRefusalReason,
  type AgentTaskSpec,
  type AgentRunStep,
  type WorkRun,
  type WorkResponse,
  type PendingRun,
  type PendingPage,
  type AgentConfigDoc,
} from './task-protocol.js';
export { canonicalJson } from './work/canonical-json.js';
export { runBody, runDigest, cancelBody, signWork, verifyWork, exportWorkKey, parseWorkKey, type SignedRunFields } from './work/run-signature.js';
export { workTicketKey, eventKey, workTicket, verifyTicket, eventMac, withMac, verifyEventMac, DerivedKeyCache } from './work/work-mac.js';
export {
  gatewayReportSchema,
  gatewayConnectionSchema,
  GATEWAY_REPORT_MAX_BYTES,
  GATEWAY_REPORT_MAX_CONNECTIONS,
  type GatewayReportBody,
  type GatewayConnectionReport,
} from './gateway-report.js';
