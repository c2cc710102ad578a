// What a schedule's spec may say. Temporal accepts more than we let users give (seconds and
// year fields, `@every 1s`): any form that can fire more often than MIN_INTERVAL_S is refused,
// so every spec (cron, interval) runs at most once a minute and one account's schedules cannot
// flood the engine.

/** The shortest time between two firings of any schedule, in seconds. */
export const MIN_INTERVAL_S = 60;

/** Macros Temporal understands that fire at most hourly. */
const MACROS = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly']);

const UNIT_S: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400 };

/** Seconds of a Go-style duration such as `1h30m` or `90s`; null when it is not one. */
function durationS(text: string): number | null {
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(text)) return null;
  let total = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) total += Number(m[1]) * UNIT_S[m[2]];
  return total;
}

/**
 * Why the cron expression cannot be a schedule's spec, or null when it can. Accepted: exactly
 * five fields (minute hour day-of-month month day-of-week: at most once a minute by
 * construction), an hourly-or-rarer macro, or `@every <duration>` of at least a minute (with an
 * optional `/<offset>`). Whether the fields themselves are valid is Temporal's to say.
 */
export function cronProblem(expr: string): string | null {
  const text = expr.trim();
  if (text.startsWith('@')) {
    if (MACROS.has(text.toLowerCase())) return null;
    const every = /^@every\s+(\S+?)(?:\/(\S+))?$/i.exec(text);
    if (!every) return `unknown macro; use one of ${[...MACROS].join(', ')} or "@every <duration>"`;
    const s = durationS(every[1]);
    if (s === null) return 'the interval after @every must be a duration such as "15m" or "1h30m"';
    if (s < MIN_INTERVAL_S) return `fires more often than once every ${MIN_INTERVAL_S} seconds`;
    if (every[2] !== undefined && durationS(every[2]) === null) return 'the offset after "/" must be a duration';
    return null;
  }
  const fields = text.split(/\s+/);
  if (fields.length !== 5) {
    return `must have exactly 5 fields (minute hour day-of-month month day-of-week), not ${fields.length}; ` +
      `seconds and years are not accepted (a schedule fires at most once every ${MIN_INTERVAL_S} seconds)`;
  }
  return null;
}
