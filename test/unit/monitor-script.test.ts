// The monitor page's codec is the server's: the script served at /monitor/protocol.js, run as a
// browser would run it, must define the same version and codes as src/protocol and parse and
// refuse frames exactly as the Node codec does; and the page must load it from that path.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runInNewContext } from 'node:vm';
import Koa from 'koa';
import { MONITOR_HTML, monitorPage } from '../../src/http/monitor-page.ts';
import { MONITOR_SCRIPT_GLOBAL, MONITOR_SCRIPT_PATH } from '../../src/http/monitor-script.ts';
import * as codec from '../../src/protocol/index.ts';

type BrowserCodec = Pick<typeof codec,
  'CloseCode' | 'PROTOCOL_VERSION' | 'WsErrorCode' | 'isFinalClose' | 'encodeFrame' | 'newFrameId' | 'parseServerToMonitor'>;

let server: Server;
let base: string;

beforeAll(async () => {
  const app = new Koa();
  app.use(monitorPage());
  server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

async function servedCodec(): Promise<BrowserCodec> {
  const res = await fetch(base + MONITOR_SCRIPT_PATH);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/javascript/);
  const text = await res.text();
  // A bare global scope with what a browser has: the bundle must need nothing from Node.
  const window: Record<string, unknown> = { crypto: globalThis.crypto, JSON, Date, Math };
  runInNewContext(text, window);
  return window[MONITOR_SCRIPT_GLOBAL] as BrowserCodec;
}

describe('the monitor page codec', () => {
  it('the page loads the codec script before its own', () => {
    const at = MONITOR_HTML.indexOf(`<script src="${MONITOR_SCRIPT_PATH}"></script>`);
    expect(at).toBeGreaterThan(-1);
    expect(at).toBeLessThan(MONITOR_HTML.indexOf('window.' + MONITOR_SCRIPT_GLOBAL));
  });

  it('is built from src/protocol: same version, close codes and error codes', async () => {
    const served = await servedCodec();
    expect(served.PROTOCOL_VERSION).toBe(codec.PROTOCOL_VERSION);
    expect({ ...served.CloseCode }).toEqual({ ...codec.CloseCode });
    expect({ ...served.WsErrorCode }).toEqual({ ...codec.WsErrorCode });
    for (const code of Object.values(codec.CloseCode)) expect(served.isFinalClose(code)).toBe(codec.isFinalClose(code));
  });

  it('parses and refuses server frames as the Node codec does', async () => {
    const served = await servedCodec();
    const task = '0b6a4f5e-3c1d-4e8a-9f2b-7d6c5e4a3b21';
    const frames = [
      codec.encodeFrame({ type: 'hello', payload: { role: 'monitor', session_id: 's', heartbeat_ms: 1000, protocol: 1 } }),
      codec.encodeFrame({ type: 'task/event', payload: { task_id: task, seq: 2, kind: 'step.started', at: 5, data: {} } }, 'r1'),
      codec.encodeFrame({ type: 'notification', payload: { id: '5d1c0f3e-2b4a-4c6d-8e9f-0a1b2c3d4e5f', task_id: task, kind: 'run.completed', title: 'Done', body: null, at: 5 } }),
      JSON.stringify({ id: 'x', type: 'task/event', payload: { task_id: task, kind: 'k', at: 'soon', data: {} } }),
      JSON.stringify({ id: 'x', type: 'step/dispatch', payload: {} }),
      'not json',
    ];
    for (const text of frames) {
      expect(JSON.parse(JSON.stringify(served.parseServerToMonitor(text)))).toEqual(JSON.parse(JSON.stringify(codec.parseServerToMonitor(text))));
    }
    // What the page encodes, the server parses.
    const id = served.newFrameId();
    const sent = served.encodeFrame({ type: 'subscribe', payload: { task_id: task, after_seq: 3 } }, undefined, id);
    const got = codec.parseMonitorFrame(sent);
    expect(got.ok && got.envelope.id).toBe(id);
    expect(got.ok && got.frame).toEqual({ type: 'subscribe', payload: { task_id: task, after_seq: 3 } });
  });
});
