import type { ReconcileContext } from '../context.ts'
import { statusOf } from '../kube/api.ts'
import { heldBytes } from '../party.ts'
import type { HouseParty, HousePartyStatus } from '../resources.ts'
import { decideScaling, type ScalingAction } from './decide.ts'

const PLURAL = 'houseparties'
/** How soon a party in motion is looked at again. */
const SETTLING_MS = 2_000

/** Observes a HouseParty's party, decides (decide.ts), acts, and writes status and an Event for each action. */
export async function reconcileHouseParty(ctx: ReconcileContext, namespace: string, name: string): Promise<{ requeueAfterMs?: number }> {
  const hp = await ctx.kube.read<HouseParty>(PLURAL, namespace, name)
  if (!hp) return {}
  const log = ctx.log.child({ kind: 'HouseParty', namespace, name, resourceVersion: hp.metadata?.resourceVersion })
  const { spec } = hp
  let peers: Awaited<ReturnType<ReconcileContext['kube']['peers']>>
  try {
    peers = await ctx.kube.peers(namespace, spec.statefulSet)
  } catch (err) {
    if (statusOf(err) !== 404) throw err
    await writeStatus(ctx, hp, { lastDecision: decision(hp, 'Hold', `no StatefulSet ${spec.statefulSet} in ${namespace}`, ctx.now()) })
    return { requeueAfterMs: ctx.resyncMs }
  }
  const [pods, claims, party] = await Promise.all([
    ctx.kube.pods(namespace, spec.statefulSet, peers.selector),
    peers.claimTemplate ? ctx.kube.claims(namespace, peers.claimTemplate, spec.statefulSet) : Promise.resolve([]),
    (await ctx.party(namespace, spec)).observe(),
  ])
  const action = decideScaling({ spec, coding: peers.coding, replicas: peers.replicas, pods, party, capacityBytes: peers.capacityBytes, claims })
  ctx.metrics.decisions.inc({ kind: 'HouseParty', action: action.kind })
  await act(ctx, hp, spec.statefulSet, action, log)

  const fill = party && peers.capacityBytes ? Math.round((heldBytes(party) / (peers.replicas * peers.capacityBytes)) * 10_000) / 10_000 : undefined
  await writeStatus(ctx, hp, {
    observedGeneration: hp.metadata?.generation,
    replicas: action.kind === 'Scale' ? action.replicas : peers.replicas,
    ...(party ? { guests: party.guests.length, degraded: party.degraded, lost: party.lost } : {}),
    ...(fill === undefined ? {} : { fill }),
    lastDecision: decision(hp, action.kind, action.reason, ctx.now()),
  })
  return { requeueAfterMs: action.kind === 'Hold' ? ctx.resyncMs : SETTLING_MS }
}

async function act(ctx: ReconcileContext, hp: HouseParty, statefulSet: string, action: ScalingAction, log: ReconcileContext['log']): Promise<void> {
  const namespace = hp.metadata?.namespace as string
  if (action.kind === 'Scale') {
    log.info({ replicas: action.replicas, reason: action.reason }, 'scaling the party')
    await ctx.kube.scale(namespace, statefulSet, action.replicas)
    await ctx.kube.event(hp, 'Normal', 'Scaled', `${statefulSet} to ${action.replicas} peers: ${action.reason}`, 'houseparty-operator')
  } else if (action.kind === 'DeleteClaim') {
    log.info({ claim: action.claim, reason: action.reason }, 'reclaiming a volume')
    await ctx.kube.deleteClaim(namespace, action.claim)
    await ctx.kube.event(hp, 'Normal', 'Reclaimed', `deleted ${action.claim}: ${action.reason}`, 'houseparty-operator')
  } else return
  ctx.metrics.lastDecision.set({ namespace, name: hp.metadata?.name ?? '', kind: 'HouseParty', action: action.kind }, ctx.now() / 1000)
}

/** The last decision keeps its time while it stays the same, so status changes only when something does. */
function decision(hp: HouseParty, action: string, reason: string, now: number): NonNullable<HousePartyStatus['lastDecision']> {
  const last = hp.status?.lastDecision
  return last && last.action === action && last.reason === reason ? last : { action, reason, time: new Date(now).toISOString() }
}

async function writeStatus(ctx: ReconcileContext, hp: HouseParty, status: HousePartyStatus): Promise<void> {
  const before = hp.status ?? {}
  const changed = Object.entries(status).some(([k, v]) => JSON.stringify(before[k as keyof HousePartyStatus]) !== JSON.stringify(v))
  if (changed) await ctx.kube.patchStatus(PLURAL, hp.metadata?.namespace as string, hp.metadata?.name as string, status)
}
