export { ErasureCoder, mulAddInto, xorInto } from './erasure.ts'
export { gfInv, gfMul, invert, mulTable } from './gf256.ts'
