import { HousePartyError } from '../../shared/errors.ts'
import { gfInv, gfMul, invert, type Matrix, mulTable, wideMulTable } from './gf256.ts'

/**
 * Systematic erasure code: k data shards are stored as they are, plus m
 * parity shards; any k of the k+m rebuild the data.
 *
 * The parity rows form a Cauchy matrix (every square submatrix of a Cauchy
 * matrix is invertible, so any k shards suffice), with columns scaled so that
 * the first parity row is all ones. That row is plain XOR, done on 32-bit
 * words: m = 1 never touches the multiplication tables.
 */
export class ErasureCoder {
  readonly k: number
  readonly m: number
  /** (k+m) × k: identity on top, parity rows below. */
  readonly #matrix: Matrix
  /** Parity coefficients, [parity][data]. */
  readonly #coefficients: number[][]

  constructor(k: number, m: number) {
    if (!Number.isInteger(k) || !Number.isInteger(m) || k < 1 || m < 0 || k + m > 255) {
      throw new HousePartyError('ERR_INVALID_ARGUMENT', `need 1 <= k, 0 <= m, k + m <= 255 (got k=${k}, m=${m})`)
    }
    this.k = k
    this.m = m
    // Cauchy: c[i][j] = 1 / (x_i + y_j), x_i = k + i, y_j = j (all distinct).
    const cauchy: Matrix = Array.from({ length: m }, (_, i) => Array.from({ length: k }, (_, j) => gfInv((k + i) ^ j)))
    // Scale column j by 1/c[0][j] so parity row 0 is all ones (XOR). Column scaling keeps every square submatrix invertible.
    const first = cauchy[0]
    const scaled = first ? cauchy.map((row) => row.map((c, j) => gfMul(c, gfInv(first[j] as number)))) : []
    const identity: Matrix = Array.from({ length: k }, (_, i) => Array.from({ length: k }, (_, j) => (i === j ? 1 : 0)))
    this.#matrix = [...identity, ...scaled]
    this.#coefficients = scaled
  }

  /** Computes the m parity shards of k equal-length data shards. */
  encode(data: readonly Uint8Array[]): Buffer[] {
    const len = data[0]?.length ?? 0
    const parity = Array.from({ length: this.m }, () => Buffer.allocUnsafe(len))
    this.encodeInto(data, parity)
    return parity
  }

  /** Like encode, into m caller-owned buffers of the shards' length (so a put can reuse them stripe after stripe). */
  encodeInto(data: readonly Uint8Array[], parity: readonly Uint8Array[]): void {
    this.#checkShards(data, this.k)
    const len = data[0]?.length ?? 0
    if (parity.length !== this.m || parity.some((p) => p.length !== len)) {
      throw new HousePartyError('ERR_INVALID_ARGUMENT', `need ${this.m} parity buffers of ${len} bytes`)
    }
    if (this.m === 0) return
    xorInto(parity[0] as Uint8Array, data)
    for (let p = 1; p < this.m; p++) {
      const out = parity[p] as Uint8Array
      out.fill(0)
      const row = this.#coefficients[p] as number[]
      for (let d = 0; d < this.k; d++) mulAddInto(out, data[d] as Uint8Array, row[d] as number)
    }
  }

  /**
   * Rebuilds every missing shard (data and parity) from any k present ones.
   * `shards` has k+m slots; missing ones are undefined. Returns all k+m.
   */
  reconstruct(shards: readonly (Uint8Array | undefined)[]): Buffer[] {
    if (shards.length !== this.k + this.m) throw new HousePartyError('ERR_INVALID_ARGUMENT', `expected ${this.k + this.m} shard slots`)
    const present = shards.map((s, i) => (s ? i : -1)).filter((i) => i >= 0)
    if (present.length < this.k) {
      throw new HousePartyError('ERR_NOT_ENOUGH_FRAGMENTS', `${present.length} of ${this.k + this.m} shards present; ${this.k} needed`)
    }
    const len = shards[present[0] as number]?.length ?? 0
    for (const i of present) if (shards[i]?.length !== len) throw new HousePartyError('ERR_INVALID_ARGUMENT', 'shards differ in length')
    const out = shards.map((s) => (s ? Buffer.from(s.buffer, s.byteOffset, s.byteLength) : undefined))
    const dataMissing = [...Array(this.k).keys()].filter((i) => !out[i])
    if (dataMissing.length > 0) {
      // Fast path: one data shard lost, XOR parity present: data = parity0 ^ other data.
      if (dataMissing.length === 1 && out[this.k]) {
        const missing = dataMissing[0] as number
        const buf = Buffer.alloc(len)
        xorInto(buf, [out[this.k] as Buffer, ...out.slice(0, this.k).filter((s): s is Buffer => !!s)])
        out[missing] = buf
      } else {
        const use = present.slice(0, this.k)
        const decode = invert(use.map((i) => this.#matrix[i] as number[]))
        for (const d of dataMissing) {
          const buf = Buffer.alloc(len)
          const row = decode[d] as number[]
          use.forEach((src, j) => {
            const c = row[j] as number
            if (c === 1) xorInto(buf, [buf, out[src] as Buffer])
            else if (c !== 0) mulAddInto(buf, out[src] as Buffer, c)
          })
          out[d] = buf
        }
      }
    }
    if (out.slice(this.k).some((s) => !s)) {
      const parity = this.encode(out.slice(0, this.k) as Buffer[])
      for (let p = 0; p < this.m; p++) out[this.k + p] ??= parity[p]
    }
    return out as Buffer[]
  }

  #checkShards(shards: readonly Uint8Array[], count: number): void {
    if (shards.length !== count) throw new HousePartyError('ERR_INVALID_ARGUMENT', `expected ${count} shards, got ${shards.length}`)
    const len = shards[0]?.length ?? 0
    if (shards.some((s) => s.length !== len)) throw new HousePartyError('ERR_INVALID_ARGUMENT', 'shards differ in length')
  }
}

/** out = sources[0] ^ sources[1] ^ ...; out may be sources[0] itself. */
export function xorInto(out: Uint8Array, sources: readonly Uint8Array[]): void {
  const first = sources[0]
  if (!first) out.fill(0)
  else if (first !== out) out.set(first.subarray(0, out.length))
  for (let s = 1; s < sources.length; s++) xorWith(out, sources[s] as Uint8Array)
}

/** out ^= src, a 32-bit word at a time when both are word-aligned. */
function xorWith(out: Uint8Array, src: Uint8Array): void {
  const len = out.length
  let i = 0
  if (out.byteOffset % 4 === 0 && src.byteOffset % 4 === 0) {
    const words = len >>> 2
    const o32 = new Uint32Array(out.buffer, out.byteOffset, words)
    const s32 = new Uint32Array(src.buffer, src.byteOffset, words)
    for (let w = 0; w < words; w++) o32[w] = (o32[w] as number) ^ (s32[w] as number)
    i = words * 4
  }
  for (; i < len; i++) out[i] = (out[i] as number) ^ (src[i] as number)
}

/** out ^= c·src: two bytes per lookup when both are 2-byte aligned, one byte otherwise. */
export function mulAddInto(out: Uint8Array, src: Uint8Array, c: number): void {
  const len = out.length
  let i = 0
  if (out.byteOffset % 2 === 0 && src.byteOffset % 2 === 0) {
    const wide = wideMulTable(c)
    const pairs = len >>> 1
    const o16 = new Uint16Array(out.buffer, out.byteOffset, pairs)
    const s16 = new Uint16Array(src.buffer, src.byteOffset, pairs)
    for (let w = 0; w < pairs; w++) o16[w] = (o16[w] as number) ^ (wide[s16[w] as number] as number)
    i = pairs * 2
  }
  if (i < len) {
    const table = mulTable(c)
    for (; i < len; i++) out[i] = (out[i] as number) ^ (table[src[i] as number] as number)
  }
}
