import { mulTable, wideMulTable } from './gf256.ts'

/**
 * outs[o] = Σ_j rows[o][j] · sources[j] over GF(2^8): what encoding (rows =
 * the parity coefficients) and decoding (rows = the inverted matrix's) both
 * are. Every buffer has the same length.
 */
export type Combine = (rows: readonly (readonly number[])[], sources: readonly Uint8Array[], outs: readonly Uint8Array[]) => void

/** The combine in JavaScript: a row of ones is XOR on words; other coefficients look products up two bytes at a time. */
export const jsCombine: Combine = (rows, sources, outs) => {
  outs.forEach((out, o) => {
    const row = rows[o] as readonly number[]
    if (row.every((c) => c === 1)) {
      xorInto(out, sources)
      return
    }
    out.fill(0)
    row.forEach((c, j) => {
      if (c === 1) xorInto(out, [out, sources[j] as Uint8Array])
      else if (c !== 0) mulAddInto(out, sources[j] as Uint8Array, c)
    })
  })
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
