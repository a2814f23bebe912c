/**
 * Public API of protocol/: the controller–agent wire protocol of Mist. Other modules import from here only; the
 * generated protobuf code in protocol/gen/ stays behind codec.ts.
 */
export * from './errors.js';
export * from './failure.js';
export * from './types.js';
export {
  PROTOCOL_VERSION,
  MAX_FRAME_BYTES,
  type FrameOptions,
  type FrameKind,
  encodeCommand,
  decodeCommand,
  encodeReply,
  decodeReply,
  encodeReport,
  decodeReport,
  encodeHello,
  decodeHello,
  encodeHeartbeat,
  decodeHeartbeat,
  frameKind,
} from './codec.js';
export * from './subjects.js';
