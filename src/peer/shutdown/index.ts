import type { OnStop } from '../../shared/config.ts'
import type { Logger } from '../../shared/logger.ts'
import { inCluster } from '../kube/index.ts'
import { decideStop, type PodFacts, type StopIntent } from './intent.ts'
import { podFacts } from './kubernetes.ts'

export { decideStop, type PodFacts, podOrdinal, type StopIntent } from './intent.ts'

/** How long a stop waits for the API server before it settles for a handoff. */
const ASK_TIMEOUT_MS = 5_000

/**
 * Resolves --on-stop for a stop happening now. `auto` asks Kubernetes when the
 * peer runs in a pod; elsewhere (a laptop, the local party) a stop is a leave.
 */
export async function stopIntent(onStop: OnStop, podName: string, log: Logger): Promise<StopIntent> {
  if (onStop !== 'auto') return onStop
  if (podName === '' || !inCluster()) return 'handoff'
  let facts: PodFacts | undefined
  try {
    facts = await podFacts(podName, AbortSignal.timeout(ASK_TIMEOUT_MS))
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'could not ask Kubernetes why this pod stops; handing data off to be safe')
  }
  const { intent, why } = decideStop(facts)
  log.info({ intent, why }, intent === 'restart' ? 'stopping for a restart: no data moves' : 'stopping for good: handing data off')
  return intent
}
