import { readdir, stat } from 'node:fs/promises'
import { isAbsolute, join, relative, resolve, sep } from 'node:path'
import { HousePartyError } from '../shared/errors.ts'

/**
 * The directory the user typed the command in. `npm run houseparty -- …`
 * runs the CLI from the package root, but npm says where the user was in
 * INIT_CWD: local paths are resolved from there, as they would be by an
 * installed `houseparty`.
 */
export function userCwd(env: NodeJS.ProcessEnv = process.env): string {
  return env.INIT_CWD && isAbsolute(env.INIT_CWD) ? env.INIT_CWD : process.cwd()
}

export function userPath(path: string): string {
  return resolve(userCwd(), path)
}

/** What a local path is, with a clear error when it is nothing. */
export async function localKind(path: string): Promise<'file' | 'dir'> {
  const s = await stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new HousePartyError('ERR_NOT_FOUND', `no such file or directory: ${path}`)
    if (err.code === 'EACCES') throw new HousePartyError('ERR_INVALID_ARGUMENT', `permission denied: ${path}`)
    throw err
  })
  if (s.isDirectory()) return 'dir'
  if (s.isFile()) return 'file'
  throw new HousePartyError('ERR_INVALID_ARGUMENT', `${path} is neither a regular file nor a directory`)
}

/** Every regular file under `dir`, as paths relative to it with "/" separators, sorted. Symbolic links are not followed. */
export async function walk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)).split(sep).join('/'))
    .sort()
}

/**
 * Where a party file named `name` goes under local directory `dir`. Party
 * names never hold "." or ".." segments (the peer refuses them), but a
 * hostile peer could send anything: a name that would land outside `dir`
 * is refused.
 */
export function localPathFor(dir: string, name: string): string {
  const out = resolve(dir, ...name.split('/'))
  const rel = relative(resolve(dir), out)
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel))
    throw new HousePartyError('ERR_BAD_NAME', `${JSON.stringify(name)} would be written outside ${dir}`)
  return out
}
