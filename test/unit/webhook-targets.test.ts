// SSRF protection: which webhook targets are refused, by address and by URL, and the lookup
// that refuses a name resolving to a private address (the address checked is the one connected to).
import { describe, expect, it } from '@jest/globals';
import { guardedLookup, isPrivateAddress, targetProblem } from '../../src/domain/webhook-targets.ts';

describe('webhook targets', () => {
  it('refuse loopback, private, link-local and other non-internet addresses', () => {
    for (const a of ['127.0.0.1', '127.8.9.10', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254',
      '100.64.0.1', '0.0.0.0', '224.0.0.1', '255.255.255.255', '::1', '::', 'fe80::1', 'fd00::1', 'fc00::5', '::ffff:127.0.0.1', '::ffff:10.0.0.1']) {
      expect({ a, private: isPrivateAddress(a) }).toEqual({ a, private: true });
    }
    for (const a of ['93.184.216.34', '8.8.8.8', '172.32.0.1', '192.169.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']) {
      expect({ a, private: isPrivateAddress(a) }).toEqual({ a, private: false });
    }
  });

  it('check URLs: scheme, credentials, literal and localhost hosts (unless private targets are allowed)', () => {
    expect(targetProblem('https://example.com/hook', false)).toBeNull();
    expect(targetProblem('http://93.184.216.34:8080/x', false)).toBeNull();
    for (const url of ['http://127.0.0.1:9000/', 'http://[::1]/', 'http://169.254.169.254/latest/meta-data', 'http://localhost:3000/',
      'http://api.localhost/', 'http://10.0.0.7/', 'http://[::ffff:192.168.0.1]/']) {
      expect({ url, problem: targetProblem(url, false) }).toEqual({ url, problem: 'must not point to a loopback, private or link-local address' });
      expect(targetProblem(url, true)).toBeNull();
    }
    expect(targetProblem('ftp://example.com/', false)).toBe('must be an http or https URL');
    expect(targetProblem('https://a:b@example.com/', true)).toBe('must not carry credentials');
    expect(targetProblem('example.com/hook', false)).toBe('must be an absolute URL');
  });

  it('refuse a name that resolves only to private addresses, at connection time', async () => {
    const resolve = (allow: boolean) => new Promise<{ err: NodeJS.ErrnoException | null; address: unknown }>((r) =>
      guardedLookup(allow)('localhost', {}, (err, address) => r({ err, address })));
    const refused = await resolve(false);
    expect(refused.err?.code).toBe('EADDRNOTALLOWED');
    const allowed = await resolve(true);
    expect(allowed.err).toBeNull();
    expect(isPrivateAddress(String(allowed.address))).toBe(true);
  });
});
