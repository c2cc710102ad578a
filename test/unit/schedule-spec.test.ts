// Every spec form a user can give fires at most once a minute.
import { describe, expect, it } from '@jest/globals';
import { cronProblem, MIN_INTERVAL_S } from '../../src/domain/schedule-spec.ts';

describe('cronProblem', () => {
  it('accepts five-field crons, rare macros and @every of a minute or more', () => {
    for (const ok of ['* * * * *', '0 9 * * 1-5', '*/5 * * * *', '@hourly', '@Daily', '@every 1m', '@every 60s', '@every 1h30m', '@every 2h/15m', '@every 0.5h']) {
      expect({ ok, problem: cronProblem(ok) }).toEqual({ ok, problem: null });
    }
  });

  it('refuses everything that can fire more often than once a minute, or that has seconds or years', () => {
    const cases: [string, RegExp][] = [
      ['@every 1s', /more often than once every 60 seconds/],
      ['@every 59s', /more often/],
      ['@every 59999ms', /more often/],
      ['@every 0.9m', /more often/],
      ['* * * * * *', /exactly 5 fields.*not 6/],
      ['* * * * * * *', /exactly 5 fields.*not 7/],
      ['*/1 * * * * * 2027', /not 7/],
      ['@every', /unknown macro/],
      ['@every soon', /must be a duration/],
      ['@every 5m/x', /offset/],
      ['@reboot', /unknown macro/],
      ['* * * *', /not 4/],
    ];
    for (const [expr, why] of cases) expect({ expr, problem: cronProblem(expr) }).toEqual({ expr, problem: expect.stringMatching(why) });
    expect(MIN_INTERVAL_S).toBe(60);
  });
});
