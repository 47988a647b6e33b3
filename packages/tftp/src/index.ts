export { createTftpServer, type TftpServer, type TftpServerDeps } from './server/server.js';
export type { TftpResolver, TftpResolved, ResolveContext } from './server/open-source.js';
export type { TftpServerEvents, TftpCounters, TransferInfo, AgreedOptions, FailReason } from './server/events.js';
export {
  tftpServerConfigSchema,
  parseTftpServerConfig,
  type TftpServerConfig,
  type TftpServerConfigInput,
} from './config.js';
export { tftpGet, type TftpGetOptions, type TftpGetResult } from './client/get.js';
export { tftpPut, type TftpPutOptions } from './client/put.js';
export type { TftpClientOptions, TransferResult } from './client/common.js';
export { runTftpServeCommand, defaultWorkers, USAGE, type CommandIo } from './command.js';
export { TftpError, TftpErrors, type TftpErrorCodeName } from './errors.js';
// Wire codec: used by netboot tests and the fuzz suite.
export { Opcode, TftpErrorCode, type DecodeError, type Decoded, MAX_BLKSIZE, MIN_BLKSIZE } from './packet/opcodes.js';
export { decodePacket, type Packet } from './packet/decode.js';
export { encodeRequest, decodeRequest, type RequestPacket, type TransferMode } from './packet/request.js';
export { encodeData, decodeData, type DataPacket } from './packet/data.js';
export { encodeAck, decodeAck, type AckPacket } from './packet/ack.js';
export { encodeError, decodeError, type ErrorPacket } from './packet/error.js';
export { encodeOack, decodeOack, type OackPacket } from './packet/oack.js';
export { negotiateOptions, type Negotiated } from './options.js';
export { normalizeRequestPath } from './path-jail.js';
export { NetasciiEncoder, NetasciiDecoder } from './netascii.js';
