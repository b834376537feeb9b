/** Thrown by a probe to stop waiting at once: the condition can no longer come true. */
export class FatalWait extends Error {}

/**
 * Polls `probe` until it returns a value other than undefined/false, or
 * throws when the deadline passes, with the last value seen in the message.
 * Tests wait on conditions, never on fixed sleeps.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 15_000, intervalMs = 50 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await probe()
      if (v !== undefined && v !== false) return v
      last = v
    } catch (err) {
      if (err instanceof FatalWait) throw err
      last = err
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${describeError(last)}`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

/** An error with what caused it (fetch says only "fetch failed"; the cause says refused, reset or timed out). */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return JSON.stringify(err)
  const cause = err.cause as { code?: string; message?: string } | undefined
  return cause ? `${err.message} (${cause.code ?? cause.message})` : err.message
}
