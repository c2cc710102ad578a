// The account itself: changing its password, deleting it with everything it holds.
import { z } from 'zod';
import type { Accounts } from '../../domain/accounts.ts';
import { removeAccount, type AccountRemovalDeps } from '../../domain/account-removal.ts';
import { envelope } from '../middleware.ts';
import { defineRoute } from '../route.ts';
import { accountDeletedData, passwordChangedData } from '../schemas/users.ts';
import { password } from './auth.ts';

export const passwordChangeBody = z.object({
  current_password: z.string().min(1).max(200),
  new_password: password,
}).strict().refine((b) => b.new_password !== b.current_password, {
  path: ['new_password'], message: 'must differ from the current password',
});

export const accountDeleteBody = z.object({ password: z.string().min(1).max(200) }).strict();

export function accountRoutes(accounts: Accounts, removal: AccountRemovalDeps) {
  return [
    defineRoute<z.infer<typeof passwordChangeBody>>({
      method: 'put', path: '/users/password', tag: 'users', auth: 'user', limit: 'auth',
      summary: 'Change the password: every other session of the account ends (this one stays open)',
      body: passwordChangeBody,
      success: { status: 200, description: 'Changed; other sessions revoked, their sockets closed with 4401', data: passwordChangedData },
      errors: [400, 401],
      async handler(ctx, { body }) {
        const ended = await accounts.changePassword(ctx.state.repos, ctx.state.sessionId, body.current_password, body.new_password);
        envelope(ctx, { password_changed: true, sessions_ended: ended });
      },
    }),
    defineRoute<z.infer<typeof accountDeleteBody>>({
      method: 'post', path: '/users/account/delete', tag: 'users', auth: 'user', limit: 'auth',
      summary: 'Delete the account (password confirmed): runs cancelled (steps aborted), schedules removed, devices disconnected, every row and file removed',
      body: accountDeleteBody,
      success: {
        status: 200, data: accountDeletedData,
        description: 'Deleted; every token of the account stops working. In order: its schedules, its sessions, then its unfinished runs are cancelled (the step in flight gets step/abort) and have ACCOUNT_DELETE_RUNS_END_MS to end (the rest are terminated), then its rows and files go and its devices\' connections close with 4401 on every node',
      },
      errors: [400, 401, 503],
      async handler(ctx, { body }) {
        await accounts.checkPassword(ctx.state.repos, body.password, 'password');
        envelope(ctx, { deleted: true, ...(await removeAccount(ctx.state.repos, removal)) });
      },
    }),
  ];
}
