import { z } from 'zod';
import * as usersDb from '../../db/users.ts';
import type { Accounts } from '../../domain/accounts.ts';
import type { Sessions } from '../../domain/sessions.ts';
import { envelope } from '../middleware.ts';
import { presentUser } from '../presenters.ts';
import { defineRoute } from '../route.ts';
import { loginData, logoutData, TokenPair, userData } from '../schemas/users.ts';

const email = z.email().max(254);
export const password = z.string().min(8, 'at least 8 characters').max(200);

export const registerBody = z.object({ email, password, name: z.string().trim().min(1).max(100).optional() }).strict();
export const loginBody = z.object({ email: z.string().max(254), password: z.string().max(200) }).strict();
export const profileBody = z.object({ name: z.string().trim().min(1).max(100) }).strict();
export const refreshBody = z.object({ refresh_token: z.string().min(1).max(200) }).strict();

/** What a client calls itself (recorded with its session). */
const clientName = (ctx: { get(h: string): string }) => (ctx.get('X-Client') || ctx.get('User-Agent')).slice(0, 100) || null;

function currentUser(path: string, tag: string, summary: string) {
  return defineRoute({
    method: 'get', path, tag, auth: 'user', summary,
    success: { status: 200, description: 'The signed-in user', data: userData }, errors: [401],
    async handler(ctx) {
      const user = await usersDb.me(ctx.state.repos);
      envelope(ctx, { user: presentUser(user) });
    },
  });
}

export function authRoutes(accounts: Accounts, sessions: Sessions, onLogout?: (sessionId: string) => void) {
  return [
    defineRoute<z.infer<typeof registerBody>>({
      method: 'post', path: '/auth/register', tag: 'auth', auth: 'none', limit: 'auth', summary: 'Create an account',
      body: registerBody, success: { status: 201, description: 'The new account', data: userData }, errors: [400, 409],
      async handler(ctx, { body }) {
        const user = await accounts.register(ctx.state.em, body);
        envelope(ctx, { user: presentUser(user) }, 201);
      },
    }),
    defineRoute<z.infer<typeof loginBody>>({
      method: 'post', path: '/auth/login', tag: 'auth', auth: 'none', limit: 'auth', summary: 'Log in with email and password',
      body: loginBody, success: { status: 200, description: 'A token pair and the user', data: loginData }, errors: [400, 401],
      async handler(ctx, { body }) {
        const { user, tokens } = await accounts.login(ctx.state.em, body, clientName(ctx));
        envelope(ctx, { ...tokens, user: presentUser(user) });
      },
    }),
    defineRoute<z.infer<typeof refreshBody>>({
      method: 'post', path: '/auth/refresh', tag: 'auth', auth: 'none',
      summary: 'Spend a refresh token for a new pair (reusing a spent one revokes the session)',
      body: refreshBody, success: { status: 200, description: 'A new token pair (the spent refresh token stops working)', data: TokenPair }, errors: [400, 401],
      async handler(ctx, { body }) {
        envelope(ctx, await sessions.refresh(ctx.state.em, body.refresh_token));
      },
    }),
    defineRoute({
      method: 'post', path: '/auth/logout', tag: 'auth', auth: 'user',
      summary: 'Revoke this session: its refresh tokens and access tokens stop working',
      success: { status: 200, description: 'The session is revoked', data: logoutData }, errors: [401],
      async handler(ctx) {
        await sessions.revoke(ctx.state.em, ctx.state.sessionId, 'logout');
        onLogout?.(ctx.state.sessionId);
        envelope(ctx, { logged_out: true });
      },
    }),
    // Two paths, one answer: the contract keeps the seed's /users/profile beside /auth/me.
    currentUser('/auth/me', 'auth', 'The current user'),
    currentUser('/users/profile', 'users', 'The current user\'s profile'),
    defineRoute<z.infer<typeof profileBody>>({
      method: 'put', path: '/users/profile', tag: 'users', auth: 'user', summary: 'Update the profile',
      body: profileBody, success: { status: 200, description: 'The updated user', data: userData }, errors: [400, 401],
      async handler(ctx, { body }) {
        const user = await usersDb.me(ctx.state.repos);
        user.name = body.name;
        await usersDb.save(ctx.state.repos);
        envelope(ctx, { user: presentUser(user) });
      },
    }),
  ];
}
