/**
 * Runs `job` for every item, at most `workers` at a time, each worker taking
 * the next item when it is done with one; resolves with the results in item
 * order. A job that throws rejects the whole run (catch inside `job` to keep
 * going).
 */
export async function mapLimited<T, R>(items: readonly T[], workers: number, job: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) out[i] = await job(items[i] as T, i)
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(workers, items.length)) }, worker))
  return out
}
