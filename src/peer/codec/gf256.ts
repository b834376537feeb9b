/**
 * Arithmetic in GF(2^8) with the polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11d),
 * the field of most Reed-Solomon storage codes. Addition is XOR.
 */
const EXP = new Uint8Array(512)
const LOG = new Uint8Array(256)
{
  let x = 1
  for (let i = 0; i < 255; i++) {
    EXP[i] = x
    LOG[x] = i
    x <<= 1
    if (x & 0x100) x ^= 0x11d
  }
  for (let i = 255; i < 512; i++) EXP[i] = EXP[i - 255] as number
}

export function gfMul(a: number, b: number): number {
  if (a === 0 || b === 0) return 0
  return EXP[(LOG[a] as number) + (LOG[b] as number)] as number
}

export function gfInv(a: number): number {
  if (a === 0) throw new RangeError('0 has no inverse in GF(256)')
  return EXP[255 - (LOG[a] as number)] as number
}

/** The 256-entry product table of one coefficient: table[x] = c·x. */
export function mulTable(c: number): Uint8Array {
  const t = new Uint8Array(256)
  for (let x = 0; x < 256; x++) t[x] = gfMul(c, x)
  return t
}

const wideTables = new Map<number, Uint16Array>()

/**
 * The product table of one coefficient for two bytes at once:
 * table[x] = c·(x & 0xff) | c·(x >> 8) << 8. 128 KiB, so it stays in L2;
 * halving the lookups makes multiply-add about 2.4 times faster than the
 * 256-entry table (measured in `npm run bench -- codec`). Cached: there are
 * only 255 non-zero coefficients.
 */
export function wideMulTable(c: number): Uint16Array {
  let t = wideTables.get(c)
  if (!t) {
    const narrow = mulTable(c)
    t = new Uint16Array(65536)
    for (let x = 0; x < 65536; x++) t[x] = (narrow[x & 0xff] as number) | ((narrow[x >>> 8] as number) << 8)
    wideTables.set(c, t)
  }
  return t
}

export type Matrix = number[][]

/** Inverts a square matrix over GF(256) by Gauss-Jordan elimination. */
export function invert(m: Matrix): Matrix {
  const n = m.length
  const a = m.map((row, i) => [...row, ...Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))])
  for (let col = 0; col < n; col++) {
    let pivot = col
    while (pivot < n && a[pivot]?.[col] === 0) pivot++
    if (pivot === n) throw new RangeError('matrix is singular')
    ;[a[col], a[pivot]] = [a[pivot] as number[], a[col] as number[]]
    const row = a[col] as number[]
    const inv = gfInv(row[col] as number)
    for (let j = 0; j < 2 * n; j++) row[j] = gfMul(row[j] as number, inv)
    for (let r = 0; r < n; r++) {
      const other = a[r] as number[]
      const f = other[col] as number
      if (r === col || f === 0) continue
      for (let j = 0; j < 2 * n; j++) other[j] = (other[j] as number) ^ gfMul(f, row[j] as number)
    }
  }
  return a.map((row) => row.slice(n))
}
