// One POST to a URL a user gave us (a webhook, a push service), through the SSRF guard of
// webhook-targets.ts: the answer's status and the start of its text, or a rejection when no
// answer came (refused target, DNS, connection, timeout).
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { checkLiteralTarget, guardedLookup } from './webhook-targets.ts';

/** The receiver's answer is read up to this much (only for the delivery log's error text). */
const MAX_ANSWER_BYTES = 4096;

export interface Answer {
  statusCode: number;
  text: string;
}

export function guardedPost(raw: string, headers: Record<string, string>, body: Buffer | string, opts: { timeoutMs: number; allowPrivate: boolean }): Promise<Answer> {
  const url = new URL(raw);
  checkLiteralTarget(url, opts.allowPrivate);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, {
      method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      lookup: guardedLookup(opts.allowPrivate) as never, timeout: opts.timeoutMs,
    }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < MAX_ANSWER_BYTES) chunks.push(c);
        size += c.length;
      });
      res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8').slice(0, MAX_ANSWER_BYTES) }));
      res.on('error', reject);
    });
    // A receiver that never answers is a failed attempt, not a stuck activity.
    req.on('timeout', () => req.destroy(new Error(`no answer within ${opts.timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}
