import type { Combine } from './combine.ts'
import { GF_SIMD_RELAXED_WASM, GF_SIMD_WASM } from './gf-simd.wasm.ts'
import { mulTable } from './gf256.ts'

const BLOCK = 64
const TABLES_BYTES = 256 * 32
/** Room for the (source, tables) offsets of up to 255 sources. */
const PAIRS_BYTES = 256 * 8
/** Bytes of each shard coded per pass: (k+m) segments stay within a core's L2 cache. */
const SEGMENT = 32 * 1024
const PAGE = 64 * 1024

/** The part of the WebAssembly JS API used here (TypeScript declares it only with the DOM's library). */
interface WasmMemory {
  buffer: ArrayBuffer
  grow(pages: number): number
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean
  Module: new (bytes: Uint8Array) => WasmModule
  Instance: new (module: WasmModule) => { exports: unknown }
}
type WasmModule = { readonly brand?: 'wasm module' }
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly

interface Exports {
  memory: WasmMemory
  xor(out: number, src: number, len: number): void
  combineRow(out: number, pairs: number, n: number, len: number): void
}

let compiled: WasmModule | null | undefined

/** The SIMD kernels' module, or null where this runtime has no WebAssembly SIMD (the JS coder is used then). */
function simdModule(): WasmModule | null {
  if (compiled !== undefined) return compiled
  // The relaxed build where the runtime has relaxed SIMD (Node 22 and later), else the strict one, else none.
  const bytes = [GF_SIMD_RELAXED_WASM, GF_SIMD_WASM].map((b) => Buffer.from(b, 'base64')).find((b) => wasm.validate(b))
  compiled = bytes ? new wasm.Module(bytes) : null
  return compiled
}

export function simdAvailable(): boolean {
  return simdModule() !== null
}

let shared: SimdCombiner | undefined

/** This thread's combiner: one instance serves every coder (a combine runs to its end before another starts). */
export function simdCombine(): Combine {
  shared ??= new SimdCombiner()
  return shared.combine
}

/**
 * The combine on WebAssembly SIMD (gf-simd.wat): the sources are copied into
 * the instance's memory (padded to 64 bytes), combined there with nibble
 * tables (i8x16.swizzle), and the results copied out. The copies run at
 * memory speed; the lookups, 16 bytes at a time, are what the JS coder does
 * two bytes at a time. Synchronous: one instance per thread serves every
 * coder (simdCombine).
 */
export class SimdCombiner {
  readonly #exports: Exports
  #memory: Uint8Array

  constructor() {
    const module = simdModule()
    if (!module) throw new Error('this runtime has no WebAssembly SIMD')
    this.#exports = new wasm.Instance(module).exports as Exports
    this.#memory = new Uint8Array(this.#exports.memory.buffer)
    this.#reserve(TABLES_BYTES)
    // Every coefficient's two nibble tables, once: c·0..c·15, then c·0x00, c·0x10 .. c·0xf0.
    for (let c = 0; c < 256; c++) {
      const table = mulTable(c)
      for (let n = 0; n < 16; n++) {
        this.#memory[c * 32 + n] = table[n] as number
        this.#memory[c * 32 + 16 + n] = table[n << 4] as number
      }
    }
  }

  readonly combine: Combine = (rows, sources, outs) => {
    const len = sources[0]?.length ?? 0
    // A segment of every shard at a time, so sources and outputs stay in the core's cache between the copy in,
    // the kernel and the copy out.
    const segment = Math.min(SEGMENT, Math.ceil(len / BLOCK) * BLOCK)
    const pairs = TABLES_BYTES
    // After the tables: the (source, tables) offsets, 8 bytes a source; then the sources' segments; then the outputs'.
    const at = (slot: number): number => pairs + PAIRS_BYTES + slot * segment
    if (sources.length * 8 > PAIRS_BYTES) throw new Error(`at most ${PAIRS_BYTES / 8} sources`)
    this.#reserve(at(sources.length + outs.length))
    const mem = this.#memory
    const words = new Int32Array(mem.buffer, pairs, PAIRS_BYTES / 4)
    for (let from = 0; from < len; from += segment) {
      const n = Math.min(segment, len - from)
      const padded = Math.ceil(n / BLOCK) * BLOCK
      sources.forEach((s, j) => {
        mem.set(s.subarray(from, from + n), at(j))
        if (padded > n) mem.fill(0, at(j) + n, at(j) + padded)
      })
      outs.forEach((out, o) => {
        const dest = at(sources.length + o)
        const row = rows[o] as readonly number[]
        if (row.every((c) => c === 1)) {
          // XOR alone (the first parity; one data shard rebuilt from it): the plain kernel, no lookups.
          mem.copyWithin(dest, at(0), at(0) + padded)
          for (let j = 1; j < sources.length; j++) this.#exports.xor(dest, at(j), padded)
          out.set(mem.subarray(dest, dest + n), from)
          return
        }
        // This output's (source, tables) list, written into the one list region before its call.
        let pairsUsed = 0
        row.forEach((c, j) => {
          if (c === 0) return
          words[2 * pairsUsed] = at(j)
          words[2 * pairsUsed + 1] = c * 32
          pairsUsed++
        })
        this.#exports.combineRow(dest, pairs, pairsUsed, padded)
        out.set(mem.subarray(dest, dest + n), from)
      })
    }
  }

  /** Grows the memory to hold `bytes` (a view of the old buffer is stale after a grow). */
  #reserve(bytes: number): void {
    const have = this.#exports.memory.buffer.byteLength
    if (bytes > have) this.#exports.memory.grow(Math.ceil((bytes - have) / PAGE))
    if (this.#memory.buffer !== this.#exports.memory.buffer) this.#memory = new Uint8Array(this.#exports.memory.buffer)
  }
}
