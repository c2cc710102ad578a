// Pieces of the list filters the db modules build for the ORM.

/** `from` <= created_at < `to`, either bound optional. */
export function createdBetween(from?: Date, to?: Date): Record<string, Date> {
  return { ...(from ? { $gte: from } : {}), ...(to ? { $lt: to } : {}) };
}

/** A LIKE pattern's text matched literally. */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => '\\' + c);
}
