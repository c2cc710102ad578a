// A user's webhook endpoints (their deliveries: src/db/deliveries.ts).
import { errors } from '../errors.ts';
import { WebhookEndpoint } from './entities.ts';
import type { OwnedRepos } from './owned.ts';
import { insertWithinLimit } from './quotas.ts';
import { dbOf, sql } from './sql.ts';

export async function getEndpoint(repos: OwnedRepos, id: string): Promise<WebhookEndpoint> {
  return repos.get(WebhookEndpoint, id, 'webhook');
}

/** Inserts the user's webhook unless the user already holds `max` webhooks (throws; see quotas.ts). */
export async function insertEndpoint(repos: OwnedRepos, data: Pick<WebhookEndpoint, 'url' | 'secret' | 'kinds' | 'description'>, max: number): Promise<WebhookEndpoint> {
  return insertWithinLimit(repos, WebhookEndpoint, { id: crypto.randomUUID(), enabled: true, ...data }, 'webhooks', max);
}

export async function updateEndpoint(repos: OwnedRepos, id: string, patch: Partial<Pick<WebhookEndpoint, 'url' | 'kinds' | 'enabled' | 'description'>>) {
  const row = await getEndpoint(repos, id);
  repos.em.assign(row, patch);
  await repos.em.flush();
  return row;
}

export async function removeEndpoint(repos: OwnedRepos, id: string): Promise<void> {
  const rows = await (await dbOf(repos.root)).all(sql`delete from webhook_endpoints where id = ${id} and user_id = ${repos.userId} returning id`);
  if (rows.length === 0) throw errors.notFound('webhook');
}
