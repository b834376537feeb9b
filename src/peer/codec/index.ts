export { mulAddInto, xorInto } from './combine.ts'
export { ErasureCoder } from './erasure.ts'
export { gfInv, gfMul, invert, mulTable, wideMulTable } from './gf256.ts'
export { simdAvailable } from './simd.ts'
export { type CodedStripe, StripeCoder, sharedSlot } from './stripe-coder.ts'
export {
  chunkBytes,
  chunkChecksum,
  chunkOffset,
  fragmentBytes,
  fragmentDigest,
  joinStripe,
  type StripeLayout,
  shardBytes,
  splitStripe,
  stripeCount,
  stripeLength,
} from './stripes.ts'
