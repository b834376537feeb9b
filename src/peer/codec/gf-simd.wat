;; GF(2^8) multiply-accumulate with WebAssembly SIMD, for the erasure coder (simd.ts).
;;
;; c·x for every byte x of a block is two 16-entry table lookups, one per nibble:
;; c·x = c·(x & 15) ^ c·(x >> 4 << 4), and i8x16.swizzle looks 16 bytes up in a
;; 16-byte table at once (PSHUFB on x86, TBL on ARM): the technique ISA-L uses.
;; Each call takes byte offsets into this module's memory and a length that is a
;; multiple of 64 (callers pad); blocks are processed 64 bytes at a time.
;; `npm run wasm` assembles this file into gf-simd.wasm.ts.
(module
  (memory (export "memory") 1)

  ;; out[i] ^= src[i], i < len
  (func (export "xor") (param $out i32) (param $src i32) (param $len i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $out) (local.get $len)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $out) (local.get $end)))
        (v128.store offset=0 (local.get $out) (v128.xor (v128.load offset=0 (local.get $out)) (v128.load offset=0 (local.get $src))))
        (v128.store offset=16 (local.get $out) (v128.xor (v128.load offset=16 (local.get $out)) (v128.load offset=16 (local.get $src))))
        (v128.store offset=32 (local.get $out) (v128.xor (v128.load offset=32 (local.get $out)) (v128.load offset=32 (local.get $src))))
        (v128.store offset=48 (local.get $out) (v128.xor (v128.load offset=48 (local.get $out)) (v128.load offset=48 (local.get $src))))
        (local.set $out (i32.add (local.get $out) (i32.const 64)))
        (local.set $src (i32.add (local.get $src) (i32.const 64)))
        (br $next))))

  ;; out[i] = Σ_j c_j·src_j[i], i < len, in one pass over out: `pairs` holds n (src, tables) offsets,
  ;; 8 bytes each; a coefficient's tables are c·0..c·15, then c·0x00, c·0x10 .. c·0xf0 (32 bytes).
  ;; 64 bytes of out stay in four registers while every source is added in, so out is written once
  ;; and never read.
  (func (export "combineRow") (param $out i32) (param $pairs i32) (param $n i32) (param $len i32)
    (local $end i32) (local $at i32) (local $p i32) (local $pend i32) (local $src i32) (local $t i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $lo v128) (local $hi v128) (local $mask v128)
    (local.set $mask (i8x16.splat (i32.const 15)))
    (local.set $end (i32.add (local.get $out) (local.get $len)))
    (local.set $pend (i32.add (local.get $pairs) (i32.shl (local.get $n) (i32.const 3))))
    (local.set $at (i32.const 0))
    (block $done
      (loop $block
        (br_if $done (i32.ge_u (i32.add (local.get $out) (local.get $at)) (local.get $end)))
        (local.set $a0 (v128.const i64x2 0 0))
        (local.set $a1 (v128.const i64x2 0 0))
        (local.set $a2 (v128.const i64x2 0 0))
        (local.set $a3 (v128.const i64x2 0 0))
        (local.set $p (local.get $pairs))
        (block $sourced
          (loop $source
            (br_if $sourced (i32.ge_u (local.get $p) (local.get $pend)))
            (local.set $src (i32.add (i32.load offset=0 (local.get $p)) (local.get $at)))
            (local.set $t (i32.load offset=4 (local.get $p)))
            (local.set $lo (v128.load offset=0 (local.get $t)))
            (local.set $hi (v128.load offset=16 (local.get $t)))
            (local.set $a0 (call $mul (local.get $a0) (v128.load offset=0 (local.get $src)) (local.get $lo) (local.get $hi) (local.get $mask)))
            (local.set $a1 (call $mul (local.get $a1) (v128.load offset=16 (local.get $src)) (local.get $lo) (local.get $hi) (local.get $mask)))
            (local.set $a2 (call $mul (local.get $a2) (v128.load offset=32 (local.get $src)) (local.get $lo) (local.get $hi) (local.get $mask)))
            (local.set $a3 (call $mul (local.get $a3) (v128.load offset=48 (local.get $src)) (local.get $lo) (local.get $hi) (local.get $mask)))
            (local.set $p (i32.add (local.get $p) (i32.const 8)))
            (br $source)))
        (local.set $src (i32.add (local.get $out) (local.get $at)))
        (v128.store offset=0 (local.get $src) (local.get $a0))
        (v128.store offset=16 (local.get $src) (local.get $a1))
        (v128.store offset=32 (local.get $src) (local.get $a2))
        (v128.store offset=48 (local.get $src) (local.get $a3))
        (local.set $at (i32.add (local.get $at) (i32.const 64)))
        (br $block))))

    ;; acc ^ c·v, 16 bytes (V8 inlines this small function)
  (func $mul (param $acc v128) (param $v v128) (param $lo v128) (param $hi v128) (param $mask v128) (result v128)
    (v128.xor (local.get $acc)
      (v128.xor
        (i8x16.swizzle (local.get $lo) (v128.and (local.get $v) (local.get $mask)))
        (i8x16.swizzle (local.get $hi) (i8x16.shr_u (local.get $v) (i32.const 4))))))
)
