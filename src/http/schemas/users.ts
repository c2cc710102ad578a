// Responses of /auth and /users: the user (never its password hash) and token pairs.
import { z } from 'zod';
import { EXAMPLE, instant, uuid } from './common.ts';

export const User = z.strictObject({
  id: uuid,
  email: z.email(),
  name: z.string().nullable(),
  created_at: instant,
}).meta({
  id: 'User',
  examples: [{ id: EXAMPLE.userId, email: 'ada@example.com', name: 'Ada', created_at: EXAMPLE.at }],
});

export const userData = z.strictObject({ user: User });

const tokenFields = {
  access_token: z.string().describe('JWT for `Authorization: Bearer`'),
  expires_in: z.int().min(1).describe('Seconds the access token is valid'),
  refresh_token: z.string().describe('Single use: POST /auth/refresh spends it for a new pair'),
  refresh_expires_in: z.int().min(1).describe('Seconds the refresh token is valid'),
  token_type: z.literal('Bearer'),
};

export const TokenPair = z.strictObject(tokenFields).meta({
  id: 'TokenPair',
  examples: [{
    access_token: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIwYjhlNGE1MyJ9.c2lnbmF0dXJl',
    expires_in: 900,
    refresh_token: 'rt_q8Yx3v0bW9kqLrR2mZ7c1A',
    refresh_expires_in: 2_592_000,
    token_type: 'Bearer',
  }],
});

export const loginData = z.strictObject({ ...tokenFields, user: User });
export const logoutData = z.strictObject({ logged_out: z.literal(true) });

export const passwordChangedData = z.strictObject({
  password_changed: z.literal(true),
  sessions_ended: z.int().min(0).describe('Other login sessions revoked (this one stays open)'),
});

export const accountDeletedData = z.strictObject({
  deleted: z.literal(true),
  runs_cancelled: z.int().min(0).describe('Unfinished runs cancelled (the step in flight got step/abort) that ended within ACCOUNT_DELETE_RUNS_END_MS'),
  runs_terminated: z.int().min(0).describe('Unfinished runs terminated: not ended within the bound, or submitted while the account was being deleted'),
  schedules_removed: z.int().min(0),
  devices_disconnected: z.int().min(0).describe('Devices unbound (a live connection is closed with 4401)'),
});
