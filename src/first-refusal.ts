// Reads run side by side whose refusal must not depend on which failed first: a folder
// missing several files names the first of them in the caller's order, every time.

/**
 * Every promise's value, or the rejection of the first one in the list that failed (not the
 * first to fail in time, which is what Promise.all gives: an empty CA folder named issuer.key
 * on one run and issuer.crt on the next).
 */
export async function firstRefusalInOrder<T extends readonly unknown[] | []>(reads: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(reads);
  for (const result of settled) if (result.status === 'rejected') throw result.reason;
  return settled.map((result) => (result as PromiseFulfilledResult<unknown>).value) as unknown as T;
}
