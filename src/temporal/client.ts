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
