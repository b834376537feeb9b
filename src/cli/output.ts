import { PartyApi } from './client.ts'
import { resolveTarget, type TargetOptions } from './target.ts'

/** Prints `data` as JSON with --json, else the text `render` makes of it. */
export function emit<T>(opts: { json?: boolean }, data: T, render: (data: T) => string): void {
  process.stdout.write(opts.json ? `${JSON.stringify(data, null, 2)}\n` : `${render(data)}\n`)
}

/** A note for the person at the terminal (stderr: stdout stays clean for scripts and --json). */
export function note(text: string): void {
  process.stderr.write(`${text}\n`)
}

export async function apiFor(opts: TargetOptions): Promise<PartyApi> {
  return new PartyApi(await resolveTarget(opts))
}

/** Party "directory" prefix: "" or ending in one "/". */
export function asPrefix(p: string | undefined): string {
  const trimmed = (p ?? '').replace(/^\/+|\/+$/g, '')
  return trimmed === '' ? '' : `${trimmed}/`
}

/** Whether party file `name` is `prefix` itself or under it (prefix given as the user typed it). */
export function under(name: string, prefix: string): boolean {
  const p = prefix.replace(/\/+$/, '')
  return p === '' || name === p || name.startsWith(`${p}/`)
}
