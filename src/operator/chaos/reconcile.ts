import type { ReconcileContext } from '../context.ts'
import type { PodSeen } from '../party.ts'
import type { CrashTarget, PartyCrasher, PartyCrasherStatus, RoundReport } from '../resources.ts'
import { decideChaos, summarize } from './decide.ts'

const PLURAL = 'partycrashers'
const COMPONENT = 'houseparty-operator'

/**
 * Runs a PartyCrasher one step at a time (decide.ts says which). Status is
 * written before each crash and after it, so a restarted operator resumes
 * the round it was in; a crash names pods by UID, so it never hits a pod
 * that was already made again.
 */
export async function reconcilePartyCrasher(ctx: ReconcileContext, namespace: string, name: string): Promise<{ requeueAfterMs?: number }> {
  const pc = await ctx.kube.read<PartyCrasher>(PLURAL, namespace, name)
  if (!pc) return {}
  const log = ctx.log.child({ kind: 'PartyCrasher', namespace, name, resourceVersion: pc.metadata?.resourceVersion })
  const { spec } = pc
  const status: PartyCrasherStatus = pc.status ?? {}
  const peers = await ctx.kube.peers(namespace, spec.statefulSet)
  const client = await ctx.party(namespace, spec)
  const [pods, party] = await Promise.all([ctx.kube.pods(namespace, spec.statefulSet, peers.selector), client.observe()])
  const now = ctx.now()
  const action = decideChaos({ spec, status, coding: peers.coding, replicas: peers.replicas, pods, party, now, random: ctx.random })
  ctx.metrics.decisions.inc({ kind: 'PartyCrasher', action: action.kind })
  const patch = (s: PartyCrasherStatus): Promise<void> => ctx.kube.patchStatus(PLURAL, namespace, name, { observedGeneration: pc.metadata?.generation, ...s })
  const event = (type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> => ctx.kube.event(pc, type, reason, message, COMPONENT)
  const stamp = (what: string): void => {
    ctx.metrics.lastDecision.set({ namespace, name, kind: 'PartyCrasher', action: what }, now / 1000)
  }

  switch (action.kind) {
    case 'Done':
      return {}
    case 'Refuse':
      if (status.phase !== 'Refused' || status.message !== action.message) {
        log.warn({ reason: action.message }, 'refused')
        await patch({ phase: 'Refused', message: action.message })
        await event('Warning', 'Refused', action.message)
      }
      return {}
    case 'Pause':
      if (status.phase !== 'Paused') await patch({ phase: 'Paused', message: 'paused between rounds' })
      return { requeueAfterMs: ctx.resyncMs }
    case 'Complete': {
      const s = action.summary
      const message =
        `${s.rounds} rounds of ${spec.action}: ${s.filesLost} files lost, ${s.filesUnreadable} unreadable; ` +
        `median ${s.medianDeathDeclaredSeconds ?? '?'} s to declare dead, ${s.medianFullRedundancySeconds ?? '?'} s to full redundancy`
      await patch({ phase: 'Completed', summary: s, message })
      await event('Normal', 'Completed', message)
      stamp('Complete')
      return {}
    }
    case 'StartRound':
      log.info({ round: action.current.round, targets: action.current.targets.map((t) => t.pod) }, 'round starts')
      await patch({ phase: 'Running', message: `round ${action.current.round} of ${spec.rounds}`, current: action.current })
      stamp('StartRound')
      return { requeueAfterMs: 0 }
    case 'Crash': {
      const current = status.current as NonNullable<PartyCrasherStatus['current']>
      const hit = await crash(ctx, namespace, pods, peers.claimTemplate, spec.action, action.targets)
      await patch({ current: { ...current, stage: 'WaitingForDeath' } })
      await event('Normal', 'Crashed', `round ${current.round}: ${spec.action} ${hit.length ? hit.join(', ') : '(already done)'}`)
      log.info({ round: current.round, hit }, 'crashed')
      stamp('Crash')
      return { requeueAfterMs: 250 }
    }
    case 'DeathDeclared': {
      const current = status.current as NonNullable<PartyCrasherStatus['current']>
      await patch({ current: { ...current, stage: 'WaitingForRedundancy', deathDeclaredSeconds: action.seconds } })
      return { requeueAfterMs: 500 }
    }
    case 'Recovered':
    case 'TimedOut': {
      const current = status.current as NonNullable<PartyCrasherStatus['current']>
      const sample = await client.checkSample(spec.sampleFiles).catch(() => ({ checked: 0, unreadable: [] as string[] }))
      const report: RoundReport = {
        round: current.round,
        targets: current.targets.map((t) => t.pod),
        startedAt: current.startedAt,
        ...(current.deathDeclaredSeconds === undefined ? {} : { deathDeclaredSeconds: current.deathDeclaredSeconds }),
        ...(action.kind === 'Recovered' ? { fullRedundancySeconds: action.seconds } : {}),
        filesChecked: sample.checked,
        filesUnreadable: sample.unreadable.length,
        filesLost: party?.lost ?? 0,
        outcome: action.kind === 'Recovered' ? 'Recovered' : 'TimedOut',
      }
      const rounds = [...(status.rounds ?? []), report]
      ctx.metrics.crashRounds.inc({ outcome: report.outcome })
      const figures = `declared dead after ${report.deathDeclaredSeconds ?? '?'} s, full redundancy after ${report.fullRedundancySeconds ?? '?'} s, ${report.filesLost} files lost, ${report.filesUnreadable} of ${report.filesChecked} sampled unreadable`
      log.info({ report }, 'round recorded')
      if (action.kind === 'TimedOut') {
        await patch({
          phase: 'Failed',
          message: action.message,
          current: null as never,
          rounds,
          summary: summarize(rounds),
          lastRoundEndedAt: new Date(now).toISOString(),
        })
        await event('Warning', 'RoundTimedOut', `${action.message}; ${figures}`)
      } else {
        await patch({ current: null as never, rounds, summary: summarize(rounds), lastRoundEndedAt: new Date(now).toISOString() })
        await event(report.filesLost || report.filesUnreadable ? 'Warning' : 'Normal', 'RoundRecovered', `round ${report.round}: ${figures}`)
      }
      stamp(action.kind)
      return { requeueAfterMs: 0 }
    }
    case 'Wait':
      return { requeueAfterMs: Math.max(100, Math.min(action.afterMs, ctx.resyncMs)) }
  }
}

/**
 * Crashes each target that is still the pod the round chose (same UID in
 * `pods`, as just listed; the delete's UID precondition covers a pod made
 * again since). Returns what it hit.
 */
async function crash(
  ctx: ReconcileContext,
  namespace: string,
  pods: readonly PodSeen[],
  claimTemplate: string | undefined,
  how: PartyCrasher['spec']['action'],
  targets: CrashTarget[],
): Promise<string[]> {
  const hit: string[] = []
  await Promise.all(
    targets.map(async (t) => {
      if (!pods.some((p) => p.name === t.pod && p.uid === t.uid)) return
      // The claim first (it stays until its pod is gone): deleting the pod first would let the StatefulSet reuse it.
      if (how === 'DeletePodAndVolume' && claimTemplate) {
        await ctx.kube.deleteClaim(namespace, `${claimTemplate}-${t.pod}`)
      }
      if (await ctx.kube.deletePod(namespace, t.pod, t.uid)) hit.push(how === 'DeletePodAndVolume' ? `${t.pod} and its volume` : t.pod)
    }),
  )
  return hit
}
