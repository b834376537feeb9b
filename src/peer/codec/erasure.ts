import { HousePartyError } from '../../shared/errors.ts'
import { type Combine, jsCombine } from './combine.ts'
import { gfInv, gfMul, invert, type Matrix } from './gf256.ts'
import { simdAvailable, simdCombine } from './simd.ts'

/**
 * Systematic erasure code: k data shards are stored as they are, plus m
 * parity shards; any k of the k+m rebuild the data.
 *
 * The parity rows form a Cauchy matrix (every square submatrix of a Cauchy
 * matrix is invertible, so any k shards suffice), with columns scaled so that
 * the first parity row is all ones. That row is plain XOR: m = 1 never
 * touches the multiplication tables.
 *
 * The arithmetic runs on WebAssembly SIMD where the runtime has it
 * (simd.ts), else in JavaScript (jsCombine: XOR on 32-bit words, products
 * two bytes per lookup); the two give the same bytes (property-tested).
 */
export class ErasureCoder {
  readonly k: number
  readonly m: number
  /** (k+m) × k: identity on top, parity rows below. */
  readonly #matrix: Matrix
  /** Parity coefficients, [parity][data]. */
  readonly #coefficients: number[][]
  readonly #combine: Combine

  /** `simd: false` keeps to the JavaScript arithmetic (the reference, and what runs without WebAssembly SIMD). */
  constructor(k: number, m: number, options: { simd?: boolean } = {}) {
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
    this.#combine = (options.simd ?? true) && simdAvailable() ? simdCombine() : jsCombine
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
    this.#combine(this.#coefficients, data, parity)
  }

  /**
   * Rebuilds every missing shard (data and parity) from any k present ones.
   * `shards` has k+m slots; missing ones are undefined. Returns all k+m.
   * The rebuilt shards come from `alloc` (by default fresh buffers): a caller
   * that rebuilds stripe after stripe passes buffers it reuses, since the first
   * touch of fresh memory costs more than the decoding itself.
   */
  reconstruct(shards: readonly (Uint8Array | undefined)[], alloc: (bytes: number) => Buffer = Buffer.allocUnsafe): Buffer[] {
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
      const rebuilt = dataMissing.map(() => alloc(len))
      if (dataMissing.length === 1 && out[this.k]) {
        const sources = [out[this.k] as Buffer, ...out.slice(0, this.k).filter((s): s is Buffer => !!s)]
        this.#combine([sources.map(() => 1)], sources, rebuilt)
      } else {
        const use = present.slice(0, this.k)
        const decode = invert(use.map((i) => this.#matrix[i] as number[]))
        this.#combine(
          dataMissing.map((d) => decode[d] as number[]),
          use.map((i) => out[i] as Buffer),
          rebuilt,
        )
      }
      dataMissing.forEach((d, i) => {
        out[d] = rebuilt[i]
      })
    }
    if (out.slice(this.k).some((s) => !s)) {
      const parity = Array.from({ length: this.m }, () => alloc(len))
      this.encodeInto(out.slice(0, this.k) as Buffer[], parity)
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
