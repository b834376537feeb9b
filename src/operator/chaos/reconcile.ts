import type { ReconcileContext } from '../context.ts'
import type { PodSeen } from '../party.ts'
import { type CrashTarget, NODE_ACTIONS, type PartyCrasher, type PartyCrasherStatus, type RoundReport, TIMED_ACTIONS } from '../resources.ts'
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
  const pods = await ctx.kube.pods(namespace, spec.statefulSet, peers.selector)
  const client = await ctx.party(namespace, spec, witness(pods, status)?.ip)
  const party = await client.observe()
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
      log.info({ round: action.current.round, node: action.current.node, targets: action.current.targets.map((t) => t.pod) }, 'round starts')
      await patch({ phase: 'Running', message: `round ${action.current.round} of ${spec.rounds}`, current: action.current })
      stamp('StartRound')
      return { requeueAfterMs: 0 }
    case 'Crash': {
      const current = status.current as NonNullable<PartyCrasherStatus['current']>
      const hit = await crash(ctx, pc, pods, peers.claimTemplate, action.targets)
      await patch({ current: { ...current, stage: TIMED_ACTIONS.has(spec.action) ? 'Holding' : 'WaitingForDeath' } })
      await event('Normal', 'Crashed', `round ${current.round}: ${spec.action} ${hit.length ? hit.join(', ') : '(already done)'}`)
      log.info({ round: current.round, hit }, 'crashed')
      stamp('Crash')
      return { requeueAfterMs: 250 }
    }
    case 'DeathDeclaredWhileHeld': {
      const current = status.current as NonNullable<PartyCrasherStatus['current']>
      await patch({ current: { ...current, deathDeclaredSeconds: action.seconds } })
      return { requeueAfterMs: 250 }
    }
    case 'HoldEnded': {
      const current = status.current as NonNullable<PartyCrasherStatus['current']>
      const { deathDeclaredSeconds: _, ...rest } = current
      const declared = action.deathDeclaredSeconds === undefined ? {} : { deathDeclaredSeconds: action.deathDeclaredSeconds }
      await patch({ current: { ...rest, ...declared, stage: 'Releasing' } })
      return { requeueAfterMs: 0 }
    }
    case 'Release': {
      const current = status.current as NonNullable<PartyCrasherStatus['current']>
      const released = await release(ctx, pc, pods, action.targets)
      await patch({ current: { ...current, stage: 'WaitingForRedundancy' } })
      await event('Normal', 'Released', `round ${current.round}: ${spec.action} undone on ${released.join(', ') || '(nothing left to undo)'}`)
      log.info({ round: current.round, released }, 'released')
      stamp('Release')
      return { requeueAfterMs: 500 }
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
        ...(current.node ? { node: current.node } : {}),
        action: spec.action,
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
 * again since, and a kill is not repeated on a container that restarted
 * since the round began). Returns what it hit.
 */
async function crash(
  ctx: ReconcileContext,
  pc: PartyCrasher,
  pods: readonly PodSeen[],
  claimTemplate: string | undefined,
  targets: CrashTarget[],
): Promise<string[]> {
  const namespace = pc.metadata?.namespace as string
  const { action, durationSeconds } = pc.spec
  // A lost node runs no shutdown: its pods are deleted without a grace period (their peers neither leave nor hand off).
  const lostNode = NODE_ACTIONS.has(action)
  const hit: string[] = []
  await Promise.all(
    targets.map(async (t) => {
      const pod = pods.find((p) => p.name === t.pod && p.uid === t.uid)
      if (!pod) return
      switch (action) {
        case 'DeleteNodeAndVolumes':
        case 'DeletePodAndVolume':
          // The claim first (it stays until its pod is gone): deleting the pod first would let the StatefulSet reuse it.
          if (claimTemplate) await ctx.kube.deleteClaim(namespace, `${claimTemplate}-${t.pod}`)
          if (await ctx.kube.deletePod(namespace, t.pod, t.uid, { force: lostNode })) hit.push(`${t.pod} and its volume`)
          return
        case 'DeleteNode':
        case 'DeletePod':
          if (await ctx.kube.deletePod(namespace, t.pod, t.uid, { force: lostNode })) hit.push(t.pod)
          return
        case 'KillProcess':
          if (t.restarts !== undefined && pod.restarts !== t.restarts) return
          await ctx.kube.exec(namespace, t.pod, pod.container, ['houseparty', 'signal', 'KILL'])
          hit.push(`${t.pod} (peer process killed)`)
          return
        case 'Freeze':
          // The peer thaws itself after the duration even if this operator is gone by then; Release thaws it anyway.
          await ctx.kube.exec(namespace, t.pod, pod.container, ['houseparty', 'signal', 'STOP', '--for', String(durationSeconds)])
          hit.push(`${t.pod} (frozen for ${durationSeconds} s)`)
          return
        case 'CutNetwork':
          await ctx.kube.cutNetwork(pc, namespace, cutPolicyName(pc, t.pod), t.pod)
          hit.push(`${t.pod} (cut off for ${durationSeconds} s)`)
          return
      }
    }),
  )
  return hit
}

/** Undoes a timed fault on each target still running (idempotent: thawing a running peer, or deleting a policy already gone, does nothing). */
async function release(ctx: ReconcileContext, pc: PartyCrasher, pods: readonly PodSeen[], targets: CrashTarget[]): Promise<string[]> {
  const namespace = pc.metadata?.namespace as string
  const done: string[] = []
  await Promise.all(
    targets.map(async (t) => {
      if (pc.spec.action === 'CutNetwork') {
        await ctx.kube.healNetwork(namespace, cutPolicyName(pc, t.pod), t.pod)
        done.push(t.pod)
        return
      }
      const pod = pods.find((p) => p.name === t.pod && p.uid === t.uid)
      if (!pod) return
      // The container may have been restarted meanwhile (a liveness probe gave up on the frozen peer): nothing to thaw then.
      await ctx.kube.exec(namespace, t.pod, pod.container, ['houseparty', 'signal', 'CONT']).then(
        () => done.push(t.pod),
        (err: Error) => ctx.log.info({ pod: t.pod, err: err.message }, 'no frozen peer to thaw'),
      )
    }),
  )
  return done
}

/**
 * During a round, the party is asked through a ready peer the round did not
 * hit: the client Service may route to a target, which a freeze or a cut
 * leaves unable to answer (or answering with its own, cut-off view).
 */
function witness(pods: readonly PodSeen[], status: PartyCrasherStatus): PodSeen | undefined {
  const targets = new Set((status.current?.targets ?? []).map((t) => t.pod))
  if (targets.size === 0) return undefined
  return pods.find((p) => p.ready && !p.terminating && p.ip && !targets.has(p.name))
}

/** The NetworkPolicy cutting one target off, named after the experiment and the pod. */
function cutPolicyName(pc: PartyCrasher, pod: string): string {
  return `${pc.metadata?.name}-cut-${pod}`.slice(0, 253)
}
