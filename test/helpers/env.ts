// What the integration global setup hands to every test file (through the environment).
export const testEnv = {
  get temporalAddress(): string {
    return need('TEST_TEMPORAL_ADDRESS');
  },
  get databaseUrl(): string {
    return need('TEST_DATABASE_URL');
  },
  get workflowBundle(): string {
    return need('TEST_WORKFLOW_BUNDLE');
  },
  get temporalUiUrl(): string {
    return process.env.TEST_TEMPORAL_UI_URL ?? 'http://127.0.0.1:8233';
  },
};

function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: integration tests run through "npm test" (global setup)`);
  return v;
}

/** PostgreSQL server the tests create their database on. */
export const TEST_PG_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
