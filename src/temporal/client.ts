import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { TRACING_OFF, type Tracing } from '../telemetry/tracing.ts';

/** With tracing on, workflow starts and signals become spans whose context the workflow continues. */
export async function connectClient(address: string, namespace: string, tracing: Tracing = TRACING_OFF): Promise<Client> {
  const connection = await Connection.connect({ address });
  const interceptors = tracing.clientInterceptors();
  return new Client({ connection, namespace, ...(interceptors ? { interceptors } : {}) });
}

export async function connectWorker(address: string): Promise<NativeConnection> {
  return NativeConnection.connect({ address });
}

/**
 * A client over a worker's NativeConnection: a workflow it starts with `requestEagerStart` goes
 * to a worker of that queue on the same connection (same process) in the start's answer,
 * without a trip through matching; with no such worker the start is an ordinary one.
 */
export function clientOverWorkerConnection(connection: NativeConnection, namespace: string, tracing: Tracing = TRACING_OFF): Client {
  const interceptors = tracing.clientInterceptors();
  return new Client({ connection, namespace, ...(interceptors ? { interceptors } : {}) });
}

