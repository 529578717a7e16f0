/**
 * Promise.all, but when several fail the error thrown is the first one in argument order, not
 * the first to settle: which read fails first is up to the file system, and an error message
 * (and the tests that check it) should not change from run to run.
 */
export async function allInOrder<T extends readonly unknown[]>(promises: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const results = await Promise.allSettled(promises as readonly Promise<unknown>[]);
  for (const result of results) if (result.status === 'rejected') throw result.reason;
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}
