// Logs are JSON lines for collectors and readable lines when asked (a terminal); secrets are
// redacted either way.
import { Writable } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import { createLogger } from '../../src/logger.ts';

function sink() {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return { stream, text: () => chunks.join('') };
}

describe('createLogger', () => {
  it('writes JSON lines to a given stream, with secrets redacted', () => {
    const out = sink();
    const logger = createLogger('info', 'jarvis-test', out.stream);
    logger.child({ component: 'http' }).info({ token: 'dev_secret', user: { password: 'hunter2' }, n: 1 }, 'hello');
    const line = JSON.parse(out.text().trim());
    expect(line).toMatchObject({ level: 30, name: 'jarvis-test', component: 'http', msg: 'hello', n: 1, token: '[redacted]', user: { password: '[redacted]' } });
  });

  it('writes readable lines when pretty, with the same redaction', () => {
    const out = sink();
    const logger = createLogger('info', 'jarvis-test', out.stream, { pretty: true });
    logger.warn({ token: 'dev_secret', n: 1 }, 'careful');
    const text = out.text();
    expect(() => JSON.parse(text)).toThrow();
    expect(text).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN \(jarvis-test\): careful\n/);
    expect(text).toContain('token: "[redacted]"');
    expect(text).not.toContain('dev_secret');
  });
});
