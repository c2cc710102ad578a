/**
 * Whose data a db function may read or change: every function of src/db that touches a user's
 * rows takes one, and adds `user_id = scope.userId` itself, so owner checks live only in src/db.
 * Another user's row is simply not found (404), so ids leak nothing. `OwnedRepos` is one.
 */
export interface UserScope {
  readonly userId: string;
}
