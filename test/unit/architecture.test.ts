import assert from 'node:assert/strict'
import { globSync, readFileSync } from 'node:fs'
import { dirname, join, normalize, resolve } from 'node:path'
import { describe, it } from 'node:test'

/**
 * The shape of the source tree, checked: no import cycles between modules,
 * one-way layers between the peer's folders, each folder reached from
 * outside only through its index.ts, and small modules.
 */
const ROOT = resolve(import.meta.dirname, '../..')
const files = globSync('src/**/*.ts', { cwd: ROOT }).sort()
const imports = new Map<string, string[]>(
  files.map((file) => {
    const text = readFileSync(join(ROOT, file), 'utf8')
    const targets = [...text.matchAll(/^(?:import|export)\b[^'"]*?from '(\.[^']+)'/gm)].map((m) => normalize(join(dirname(file), m[1] as string)))
    return [file, targets]
  }),
)

/** The cycles of a graph, each as the path that closes it (depth-first). */
function cycles(graph: Map<string, Iterable<string>>): string[][] {
  const state = new Map<string, 'open' | 'done'>()
  const found: string[][] = []
  const visit = (node: string, path: string[]): void => {
    state.set(node, 'open')
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'open') found.push([...path.slice(path.indexOf(next)), node, next])
      else if (!state.has(next)) visit(next, [...path, node])
    }
    state.set(node, 'done')
  }
  for (const node of graph.keys()) if (!state.has(node)) visit(node, [])
  return found
}

/** Folders under src/peer whose modules may be longer than 400 lines: the membership roles read best whole. */
const LONG_ALLOWED = new Set(['src/peer/membership/core.ts', 'src/peer/membership/coordinator.ts', 'src/peer/membership/detector.ts'])

describe('source tree', () => {
  it('has no import cycle between modules', () => {
    assert.deepEqual(cycles(imports), [])
  })

  it("has one-way layers between the peer's folders", () => {
    const folders = new Map<string, Set<string>>()
    for (const [file, targets] of imports) {
      const from = dirname(file)
      if (!from.startsWith('src/peer/')) continue
      for (const target of targets) {
        const to = dirname(target)
        if (to !== from && to.startsWith('src/peer/')) folders.set(from, (folders.get(from) ?? new Set()).add(to))
      }
    }
    assert.deepEqual(cycles(folders), [])
  })

  it("reaches each of the peer's folders from outside only through its index.ts", () => {
    const bypass: string[] = []
    for (const [file, targets] of imports) {
      for (const target of targets) {
        const folder = dirname(target)
        if (folder.startsWith('src/peer/') && folder !== dirname(file) && !target.endsWith('/index.ts')) bypass.push(`${file} → ${target}`)
      }
    }
    assert.deepEqual(bypass, [])
  })

  it('dials other guests only from transfer/ (every call goes through the roster there)', () => {
    const dialing = files.filter((f) => {
      if (f.startsWith('src/peer/transfer/') || f.startsWith('src/peer/net/')) return false
      const text = readFileSync(join(ROOT, f), 'utf8')
      return [...text.matchAll(/^import \{([^}]*)\} from '[^']*\/net\/index\.ts'/gm)].some((m) => /\b(call|dial)\b/.test(m[1] as string))
    })
    assert.deepEqual(dialing, [])
  })

  it('keeps every module under 400 lines, but the membership roles', () => {
    const long = files.filter((f) => !LONG_ALLOWED.has(f) && readFileSync(join(ROOT, f), 'utf8').split('\n').length > 400)
    assert.deepEqual(long, [])
  })
})
