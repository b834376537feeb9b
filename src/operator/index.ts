/** The House Party operator: safe scaling (HouseParty) and chaos experiments (PartyCrasher). */
export { type ChaosAction, type ChaosObservation, decideChaos, summarize } from './chaos/decide.ts'
export { OPERATOR_SETTINGS, type OperatorConfig, resolveOperatorConfig } from './config.ts'
export { Operator } from './operator.ts'
export type * from './resources.ts'
export { decideScaling, type ScalingAction, type ScalingObservation } from './scaling/decide.ts'
