// Logs are JSON lines for collectors and readable lines when asked (a terminal); secrets are
// redacted either way. On stdout, the lines of a turn leave in one write and a crash keeps every
// line, in order.
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Writable } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import { createLogger } from '../../src/logger.ts';

const LOGGER_URL = pathToFileURL(join(import.meta.dirname, '..', '..', 'src', 'logger.ts')).href;

/** Runs `body` (ESM, with `createLogger` imported) in a node process whose stdout is a file; that file's text. */
async function stdoutOf(body: string): Promise<{ text: string; code: number | null; writes: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'jarvis-log-'));
  try {
    const file = join(dir, 'out.log');
    const fd = openSync(file, 'w');
    const child = spawn(process.execPath, ['--input-type=module', '-e', `import { createLogger } from ${JSON.stringify(LOGGER_URL)};\n${body}`], {
      stdio: ['ignore', fd, 'pipe'],
    });
    closeSync(fd);
    let stderr = '';
    child.stderr?.on('data', (d) => (stderr += String(d)));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    const writes = Number(/writes=(\d+)/.exec(stderr)?.[1] ?? -1);
    return { text: readFileSync(file, 'utf8'), code, writes };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function numbers(text: string): number[] {
  return text.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { i: number }).i);
}

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

  it('keeps every line, in order, when the process crashes with lines still to write', async () => {
    // 2,000 lines, then an uncaught exception in the next turn. A log that writes from another
    // thread (pino's default, asynchronous sonic-boom) is often in the middle of a write then, and
    // its exit flush writes the lines queued after that write first: about one run in three came
    // out 0, 167, 168, ... 1999, 1, 2, ... 166. Fifteen runs, so that such a log fails here.
    const body = `
      const logger = createLogger('info');
      for (let i = 0; i < 2000; i++) logger.info({ i }, 'line');
      setImmediate(() => { throw new Error('crash'); });`;
    for (let attempt = 0; attempt < 15; attempt++) {
      const { text, code } = await stdoutOf(body);
      expect(code).toBe(1);
      expect(numbers(text)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    }
  }, 60_000);

  it('writes the lines of one event-loop turn in one write, the next turn\'s in the next', async () => {
    const body = `
      import fs from 'node:fs';
      let writes = 0;
      const writeSync = fs.writeSync;
      fs.writeSync = (...args) => { if (args[0] === 1) writes++; return writeSync(...args); };
      const logger = createLogger('info');
      for (let i = 0; i < 10; i++) logger.info({ i }, 'line');
      setImmediate(() => {
        for (let i = 10; i < 20; i++) logger.info({ i }, 'line');
        setImmediate(() => process.stderr.write('writes=' + writes + '\\n'));
      });`;
    const { text, code, writes } = await stdoutOf(body);
    expect(code).toBe(0);
    expect(numbers(text)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(writes).toBe(2);
  }, 60_000);
});
