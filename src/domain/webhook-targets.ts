// Where a webhook may be sent (SSRF protection): never to this machine, the private networks
// behind it or link-local addresses (cloud metadata at 169.254.169.254) unless the operator
// allows private targets (WEBHOOK_ALLOW_PRIVATE_TARGETS, for a receiver on the same network and
// for tests). A name is checked on every delivery, against each address it resolves to, inside
// the connection's own lookup: the address checked is the address connected to, so a name that
// resolves to a public address once and to 127.0.0.1 next time (DNS rebinding) gains nothing.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';

const blocked = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blocked.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) blocked.addSubnet(net, bits, 'ipv6');

/** Whether `address` (an IP) is loopback, private, link-local, or otherwise not on the internet. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return blocked.check(address, 'ipv4');
  if (family !== 6) return true; // not an address at all: refuse
  // An IPv4 address written as IPv6 (::ffff:127.0.0.1) is that IPv4 address.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return blocked.check(mapped[1], 'ipv4');
  return blocked.check(address, 'ipv6');
}

/** The URL's host as an address when it is one (brackets of IPv6 removed), else null. */
function literalHost(url: URL): string | null {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return isIP(host) ? host : null;
}

/**
 * Why `url` can never be a webhook target, or null: checked when an endpoint is saved (a name is
 * checked again on each delivery, by `guardedLookup`).
 */
export function targetProblem(raw: string, allowPrivate: boolean): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'must be an absolute URL';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be an http or https URL';
  if (url.username || url.password) return 'must not carry credentials';
  if (allowPrivate) return null;
  const literal = literalHost(url);
  if (literal ? isPrivateAddress(literal) : /(^|\.)localhost\.?$/i.test(url.hostname)) {
    return 'must not point to a loopback, private or link-local address';
  }
  return null;
}

export class TargetRefused extends Error {
  readonly code = 'EADDRNOTALLOWED';
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for http.request that refuses private addresses (unless allowed): the connection
 * goes only to an address it checked.
 */
export function guardedLookup(allowPrivate: boolean) {
  return (hostname: string, options: { all?: boolean; family?: number }, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const allowed = allowPrivate ? addresses : addresses.filter((a) => !isPrivateAddress(a.address));
      if (allowed.length === 0) {
        return callback(new TargetRefused(`${hostname} resolves only to loopback, private or link-local addresses`), []);
      }
      if (options.all) return callback(null, allowed);
      callback(null, allowed[0].address, allowed[0].family);
    });
  };
}

/** Refuses an address literal in the URL (no lookup happens for one, so `guardedLookup` cannot). */
export function checkLiteralTarget(url: URL, allowPrivate: boolean): void {
  const literal = literalHost(url);
  if (literal && !allowPrivate && isPrivateAddress(literal)) throw new TargetRefused(`${literal} is a loopback, private or link-local address`);
}
