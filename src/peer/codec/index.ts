export { ErasureCoder, mulAddInto, xorInto } from './erasure.ts'
export { gfInv, gfMul, invert, mulTable, wideMulTable } from './gf256.ts'
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
