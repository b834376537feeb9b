import type { Domains } from '../protocol/index.ts'
import type { RingId } from './ring.ts'

/**
 * Failure domains, nested: a region holds zones, a zone holds nodes, a node
 * holds peers. Losing a domain loses every fragment its peers hold, so a
 * file survives the loss of any one domain when no domain holds more than m
 * of its fragments.
 */
export const LEVELS = ['region', 'zone', 'node'] as const
export type Level = (typeof LEVELS)[number]

/** One key per level, each naming its parents too, so that the domains nest even when two zones reuse a node name. */
export type DomainPath = readonly [region: string, zone: string, node: string]

/** What is known of each guest's domains (undefined: a peer of its own, as a guest started without --node or --zone). */
export type DomainsOf = (id: RingId) => Domains | undefined

/**
 * A guest's path: one without a node name is a node of its own, without a
 * zone its node is a zone of its own, without a region its zone is a region
 * of its own. Unlabelled peers are thus each their own domain at every
 * level, and placement spreads them exactly as when domains were unknown.
 */
export function domainPath(id: RingId, domains: Domains | undefined): DomainPath {
  const node = domains?.node ?? id
  const zone = domains?.zone ?? node
  const region = domains?.region ?? zone
  return [region, `${region}${SEP}${zone}`, `${region}${SEP}${zone}${SEP}${node}`]
}

const SEP = '\u0000'

/** The readable name of a domain key: its own name, without its parents'. */
export function domainName(key: string): string {
  return key.slice(key.lastIndexOf(SEP) + 1)
}

/**
 * The domains, level by level, whose loss alone would leave fewer than `k`
 * of a file's readable fragments (one path per readable fragment): the file
 * is one domain failure away from being unreadable. Empty for a file that
 * is unreadable already (it is counted as lost, not at risk).
 */
export function domainsLosing(readable: readonly DomainPath[], k: number): [string[], string[], string[]] {
  const out: [string[], string[], string[]] = [[], [], []]
  if (readable.length < k) return out
  const counts = countDomains(readable)
  for (let l = 0; l < 3; l++) for (const [key, held] of counts[l] as Map<string, number>) if (readable.length - held < k) out[l]?.push(key)
  return out
}

/** At most this many fragments of one file per domain, level by level. */
export type Caps = readonly [region: number, zone: number, node: number]

const UNLIMITED = Number.MAX_SAFE_INTEGER

/** How many fragments of one file each domain holds already, by level. */
export type Counts = [Map<string, number>, Map<string, number>, Map<string, number>]

export function countDomains(paths: Iterable<DomainPath>): Counts {
  const counts: Counts = [new Map(), new Map(), new Map()]
  for (const path of paths) add(counts, path)
  return counts
}

export function add(counts: Counts, path: DomainPath): void {
  for (let l = 0; l < 3; l++) {
    const key = path[l] as string
    counts[l]?.set(key, (counts[l]?.get(key) ?? 0) + 1)
  }
}

/** Whether one more fragment in `path` stays within `caps`. */
export function fits(counts: Counts, path: DomainPath, caps: Caps): boolean {
  for (let l = 0; l < 3; l++) if ((counts[l]?.get(path[l] as string) ?? 0) >= (caps[l] as number)) return false
  return true
}

/**
 * How many more fragments `candidates` can take without any domain going
 * over `caps`, given what is placed already. The domains nest (a laminar
 * family), so the answer adds up from the nodes: a node takes at most its
 * cap less what it holds, and no more than its free peers; a zone at most
 * its cap less what it holds, and no more than its nodes take; and so on.
 */
export function capacity(candidates: readonly DomainPath[], placed: Counts, caps: Caps): number {
  let below = new Map<string, number>()
  for (const path of candidates) below.set(path[2], (below.get(path[2]) ?? 0) + 1)
  for (let l = 2; l >= 0; l--) {
    const up = new Map<string, number>()
    for (const [key, free] of below) {
      const room = Math.min(free, Math.max(0, (caps[l] as number) - (placed[l]?.get(key) ?? 0)))
      const parent = l > 0 ? parentOf(key) : ''
      up.set(parent, (up.get(parent) ?? 0) + room)
    }
    below = up
  }
  return below.get('') ?? 0
}

const parentOf = (key: string): string => key.slice(0, key.lastIndexOf(SEP))

/**
 * The caps placement keeps to, given what is placed already and that `count`
 * more fragments must fit. Tightened step by step, each step kept only if
 * `count` still fits: first survival (no node, then no zone, then no region
 * holding more than `tolerate` fragments: losing it loses nothing), then
 * every fragment on a node of its own, then the evenest spread (the smallest
 * per-region cap, then per-zone, then per-node; a wider domain first, as
 * losing it loses everything within it). Where the party cannot meet a step
 * it is skipped: placement does as well as the domains allow.
 */
export function tightestCaps(candidates: readonly DomainPath[], placed: Counts, count: number, tolerate: number): Caps {
  const caps: [number, number, number] = [UNLIMITED, UNLIMITED, UNLIMITED]
  if (count <= 0 || capacity(candidates, placed, caps) < count) return caps
  const tighten = (level: number, cap: number): boolean => {
    const before = caps[level] as number
    if (cap >= before) return true
    caps[level] = cap
    if (capacity(candidates, placed, caps) >= count) return true
    caps[level] = before
    return false
  }
  const NODE = 2
  for (const level of [NODE, 1, 0]) tighten(level, Math.max(1, tolerate))
  tighten(NODE, 1)
  // No domain ever needs room for more than every fragment of the file.
  const most = count + Math.max(0, ...placed.flatMap((m) => [...m.values()]))
  for (let level = 0; level < 3; level++) {
    for (let cap = 1; cap < Math.min(caps[level] as number, most); cap++) if (tighten(level, cap)) break
  }
  return caps
}

/**
 * Picks `count` of `ordered` (best first) within the tightest caps (a file
 * that survives the loss of `tolerate` fragments), given
 * the paths already holding fragments of the file: the first candidate in
 * order that keeps every domain within its cap, and so on. The domains form
 * a laminar matroid, so this greedy pass always fills `count` when the caps
 * allow it, and it keeps the order's preference wherever the rule leaves a
 * choice (rendezvous within the constraint). The rest follow, those whose
 * domains hold least of the file first, as fallbacks.
 */
export function pickWithinDomains<T>(
  ordered: readonly T[],
  pathOf: (x: T) => DomainPath,
  count: number,
  tolerate: number,
  placed: readonly DomainPath[] = [],
): T[] {
  const held = countDomains(placed)
  const paths = ordered.map(pathOf)
  const caps = tightestCaps(paths, held, count, tolerate)
  const chosen: number[] = []
  for (let i = 0; i < ordered.length && chosen.length < count; i++) {
    const path = paths[i] as DomainPath
    if (!fits(held, path, caps)) continue
    chosen.push(i)
    add(held, path)
  }
  const taken = new Set(chosen)
  const load = (i: number): [number, number, number] => {
    const path = paths[i] as DomainPath
    return [held[0].get(path[0]) ?? 0, held[1].get(path[1]) ?? 0, held[2].get(path[2]) ?? 0]
  }
  const rest = ordered
    .map((_, i) => i)
    .filter((i) => !taken.has(i))
    .map((i) => ({ i, load: load(i) }))
    .sort((a, b) => a.load[0] - b.load[0] || a.load[1] - b.load[1] || a.load[2] - b.load[2] || a.i - b.i)
  return [...chosen.map((i) => ordered[i] as T), ...rest.map((r) => ordered[r.i] as T)]
}

/** The most fragments of one file any one domain holds, level by level: what losing the worst region, zone or node costs it. */
export function worstLoss(paths: readonly DomainPath[]): Caps {
  const counts = countDomains(paths)
  const most = (m: Map<string, number>): number => Math.max(0, ...m.values())
  return [most(counts[0]), most(counts[1]), most(counts[2])]
}

/** Orders two spreads: the one losing fewer fragments to its worst region, then zone, then node, is better (negative). */
export function compareSpread(a: Caps, b: Caps): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2]
}
