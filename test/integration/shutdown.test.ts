// Graceful shutdown of an API node: sockets close with 1001 (reconnect elsewhere), the step
// in flight is handed back to the workflow, and its result is not lost: the device, back on
// another node, answers the re-dispatch from its store instead of running the step again.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DeviceClient, MemoryKeyStore, demoHandlers, type DeviceClientEvent } from '../../src/clients/device-client.ts';
import { MonitorClient } from '../../src/clients/monitor-client.ts';
import { addDevice, addWorkflow, eventually, linear, signup } from '../helpers/api.ts';
import { startSystem, type System } from '../helpers/system.ts';

let sys: System;

beforeAll(async () => {
  sys = await startSystem({ nodes: 2 });
});
afterAll(async () => {
  await sys?.stop();
});

describe('graceful shutdown', () => {
  it('a node stopping mid-step loses no result and runs no step twice', async () => {
    const [nodeA, nodeB] = sys.nodes;
    const wsA = `${nodeA.url.replace(/^http/, 'ws')}/ws`;
    const wsB = `${nodeB.url.replace(/^http/, 'ws')}/ws`;
    const user = await signup(sys.api);
    const device = await addDevice(sys.api, user.token);
    const store = new MemoryKeyStore(); // the PC's store of finished keys survives the reconnect
    const eventsA: DeviceClientEvent[] = [];
    const onA = new DeviceClient({ url: wsA, token: device.deviceToken, handlers: demoHandlers, store, reconnect: false, onEvent: (e) => eventsA.push(e) });
    await onA.start();

    const monitor = new MonitorClient({ url: wsB, token: user.token });
    await monitor.start();
    const workflowId = await addWorkflow(sys.api, user.token, linear([{ type: 'demo.sleep', params: { ms: 1500 } }, { type: 'demo.echo', params: {} }]));
    const taskId = (await sys.api.post('/tasks', { workflow_id: workflowId, device_id: device.id }, user.token)).body.data.task.id as string;
    monitor.subscribe(taskId);
    await eventually(async () => eventsA.some((e) => e.type === 'dispatch'), 15_000, 'dispatch on A');

    await nodeA.stop();
    const closed = eventsA.find((e) => e.type === 'disconnected') as Extract<DeviceClientEvent, { type: 'disconnected' }>;
    expect(closed.code).toBe(1001);
    // The handler keeps running on the PC and finishes while the device is away.
    const key = `${taskId}:s1:1`;
    await eventually(async () => store.get(key) !== undefined, 10_000, 'step finished offline');

    const eventsB: DeviceClientEvent[] = [];
    const onB = new DeviceClient({ url: wsB, token: device.deviceToken, handlers: demoHandlers, store, onEvent: (e) => eventsB.push(e) });
    await onB.start();
    await monitor.waitFor(() => monitor.eventsOf(taskId).some((e) => e.kind === 'run.completed'), 30_000, 'run completed');

    expect(onA.executions.get(key)).toBe(1);
    expect(onB.executions.get(key) ?? 0).toBe(0);
    const redispatch = eventsB.find((e) => e.type === 'dispatch' && e.payload.key === key) as Extract<DeviceClientEvent, { type: 'dispatch' }>;
    expect(redispatch.replayed).toBe(true);
    const dispatched = monitor.eventsOf(taskId).filter((e) => e.kind === 'step.dispatched' && e.data.step_id === 's1');
    expect(dispatched.map((e) => e.data.delivery)).toEqual([1, 2]);
    await onB.stop();
    await monitor.stop();
  });
});
