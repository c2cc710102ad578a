// The settings of the test systems that dispatch deliveries (webhooks.test, web-push.test). Test
// files share one database and a dispatcher claims every user's notifications, so a delivery of
// one file may run on another file's workers: these files run with the same settings, so it
// does not matter which. Receivers are on 127.0.0.1, hence private targets allowed; retries are
// fast. The VAPID pair is a test-only key.
export const TEST_VAPID = {
  publicKey: 'BOk0M3z29FX2n0QE8JniviqTKIatsWF0uHDzEsqGZ3Ha4Tj8ezRfGjkw0b-d92kjX8k2gIM9WVT2hTzpL3ers04',
  privateKey: '4MIRXc597_vIpcKa8zHbWJ3-GOOo-ojdXqZfvEUaATo',
  subject: 'mailto:ops@example.com',
};

export const DELIVERY_MAX_ATTEMPTS = 3;

export const DELIVERY_TEST_ENV: Record<string, string> = {
  WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
  NOTIFY_DISPATCH_MS: '100',
  DELIVERY_MAX_ATTEMPTS: String(DELIVERY_MAX_ATTEMPTS),
  DELIVERY_RETRY_INITIAL_MS: '200',
  DELIVERY_RETRY_MAX_MS: '400',
  VAPID_PUBLIC_KEY: TEST_VAPID.publicKey,
  VAPID_PRIVATE_KEY: TEST_VAPID.privateKey,
  VAPID_SUBJECT: TEST_VAPID.subject,
  RATE_LIMIT_AUTH_PER_MIN: '1000',
};
