// A log's details are stored whole up to their cap, as a marker with size and preview beyond it.
import { describe, expect, it } from '@jest/globals';
import { boundedDetails, MAX_LOG_DETAILS_BYTES } from '../../src/domain/logs.ts';

describe('boundedDetails', () => {
  it('keeps details up to the cap as they are', () => {
    const pad = (n: number) => ({ text: 'x'.repeat(n - JSON.stringify({ text: '' }).length) });
    expect(Buffer.byteLength(JSON.stringify(pad(MAX_LOG_DETAILS_BYTES)))).toBe(MAX_LOG_DETAILS_BYTES);
    expect(boundedDetails(pad(MAX_LOG_DETAILS_BYTES))).toEqual(pad(MAX_LOG_DETAILS_BYTES));
    expect(boundedDetails({ a: [1, 2, { b: 'c' }] })).toEqual({ a: [1, 2, { b: 'c' }] });
  });

  it('replaces larger details by their size and the start of their JSON', () => {
    const big = { rows: Array.from({ length: 5000 }, (_, i) => ({ i, name: `row ${i}` })) };
    const json = JSON.stringify(big);
    const stored = boundedDetails(big) as { truncated: boolean; bytes: number; preview: string };
    expect(stored.truncated).toBe(true);
    expect(stored.bytes).toBe(Buffer.byteLength(json));
    expect(json.startsWith(stored.preview)).toBe(true);
    expect(Buffer.byteLength(JSON.stringify(stored))).toBeLessThan(MAX_LOG_DETAILS_BYTES / 8);
    // Counted in bytes, not characters: 6,000 three-byte characters are over a 16 KiB cap.
    expect((boundedDetails({ t: '中'.repeat(6000) }) as { truncated?: boolean }).truncated).toBe(true);
  });
});
