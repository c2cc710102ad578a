// The monitor page's part of the codec. src/http/monitor-script.ts bundles this file (zod
// included) into one script the page loads before its own, as the global `JarvisProtocol`, so
// the page parses and encodes frames with the same schemas as the server.
export { CloseCode, PROTOCOL_VERSION, WsErrorCode, isFinalClose } from './constants.ts';
export { encodeFrame, newFrameId, parseServerToMonitor } from './codec.ts';
