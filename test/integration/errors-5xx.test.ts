// A 5xx answer carries the request id and a plain sentence; what failed inside (Temporal's own
// error text here) goes to the log under that request id, never to the client.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { Client, Connection } from '@temporalio/client';
import { AccessTokens } from '../../src/domain/tokens.ts';
import { createApp } from '../../src/http/app.ts';
import { createLogger } from '../../src/logger.ts';
import { addDevice, addWorkflow, linear, signup } from '../helpers/api.ts';
import { startSystem, type System } from '../helpers/system.ts';

let sys: System;
let server: Server;
let base: string;
let connection: Connection;
const logLines: string[] = [];

beforeAll(async () => {
  sys = await startSystem();
  // The same database and secret as `sys`, but a Temporal address where nothing listens.
  connection = await Connection.lazy({ address: '127.0.0.1:1' });
  const app = createApp({
    config: sys.config,
    logger: createLogger('error', 'jarvis', { write: (line: string) => { logLines.push(line); } }),
    orm: sys.orm,
    temporal: new Client({ connection, namespace: sys.config.TEMPORAL_NAMESPACE }),
    tokens: new AccessTokens(sys.config.JWT_SECRET, sys.config.ACCESS_TOKEN_TTL_S),
    sockets: sys.nodes[0].gateway,
  });
  server = createServer(app.callback());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  await connection?.close().catch(() => undefined);
  await sys?.stop();
});

it('answers 503 with the request id and a plain message when Temporal is unreachable; the log keeps the detail', async () => {
  const { token } = await signup(sys.api);
  const device = await addDevice(sys.api, token);
  const workflowId = await addWorkflow(sys.api, token, linear([{ type: 'demo.echo' }]));

  const res = await fetch(`${base}/api/v1/tasks`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', 'X-Request-ID': 'req-5xx-check' },
    body: JSON.stringify({ workflow_id: workflowId, device_id: device.id }),
  });
  const body = (await res.json()) as { code: number; message: string; data: unknown; request_id: string };
  expect(res.status).toBe(503);
  expect(body).toEqual({ code: 5000, message: 'a service this request needs is unavailable; retry later', data: null, request_id: 'req-5xx-check' });

  // The internal text is in the log, under the same request id.
  const logged = logLines.map((l) => JSON.parse(l) as { requestId?: string; err?: { message?: string } })
    .find((l) => l.requestId === 'req-5xx-check');
  expect(logged?.err?.message).toMatch(/could not (start|queue) the run/);
  expect(JSON.stringify(body)).not.toContain(logged!.err!.message!);
}, 60_000);
