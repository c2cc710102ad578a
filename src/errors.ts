// The contract's error codes, each with its HTTP status, and factories for them.
export const ErrorCode = {
  InvalidParams: 1001,
  Unauthenticated: 1002,
  Forbidden: 1003,
  NotFound: 2001,
  NotExecutable: 3001,
  RateLimited: 4029,
  ServerError: 5000,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface FieldError {
  path: string;
  message: string;
}

export class AppError extends Error {
  readonly status: number;
  readonly code: ErrorCode;
  readonly data: unknown;
  readonly headers: Record<string, string>;

  constructor(status: number, code: ErrorCode, message: string, data?: unknown, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.data = data ?? null;
    this.headers = headers;
  }
}

/** Most field errors listed in one 400: a report of every fault could cost more than the input. */
export const MAX_FIELD_ERRORS = 20;

/** At most MAX_FIELD_ERRORS, the last saying how many more there were. */
export function capFieldErrors(list: FieldError[]): FieldError[] {
  if (list.length <= MAX_FIELD_ERRORS) return list;
  return [...list.slice(0, MAX_FIELD_ERRORS - 1), { path: '(root)', message: `and ${list.length - MAX_FIELD_ERRORS + 1} more errors` }];
}

export const errors = {
  invalid: (message: string, fieldErrors: FieldError[] = []) =>
    new AppError(400, ErrorCode.InvalidParams, message, { errors: capFieldErrors(fieldErrors) }),
  unauthenticated: (message = 'not authenticated') => new AppError(401, ErrorCode.Unauthenticated, message),
  forbidden: (message = 'forbidden') => new AppError(403, ErrorCode.Forbidden, message),
  notFound: (what = 'resource') => new AppError(404, ErrorCode.NotFound, `${what} not found`),
  conflict: (message: string, data?: unknown) => new AppError(409, ErrorCode.NotExecutable, message, data),
  payloadTooLarge: (message = 'request body too large') => new AppError(413, ErrorCode.InvalidParams, message),
  unsupportedMediaType: (message = 'content type must be application/json') =>
    new AppError(415, ErrorCode.InvalidParams, message),
  rateLimited: (retryAfterS: number) =>
    new AppError(429, ErrorCode.RateLimited, 'too many requests', null, { 'Retry-After': String(retryAfterS) }),
  unavailable: (message: string) => new AppError(503, ErrorCode.ServerError, message),
  /** The account holds as many of `what` as it may (a configured per-account limit). */
  limitReached: (what: string, max: number) =>
    new AppError(403, ErrorCode.Forbidden, `account limit reached: at most ${max} ${what}`, { limit: max, what }),
  /** The account has as many unfinished runs as it may: retry once some have ended. */
  tooManyRuns: (max: number) =>
    new AppError(429, ErrorCode.RateLimited, `account limit reached: at most ${max} unfinished runs; retry once some have ended`,
      { limit: max, what: 'runs' }, { 'Retry-After': '30' }),
};
