// The WebSocket protocol (docs/PROTOCOL.md is its spec): one codec for the gateway, the
// reference clients, the scripts and, bundled by browser.ts, the monitor page. Transport
// (upgrade, auth, heartbeat sweep, size limits, backpressure) is src/ws/'s, not this module's.
export * from './constants.ts';
export * from './frames.ts';
export * from './codec.ts';
