import { fileUrl } from '../test/helpers/files.ts'
import { waitForAgreement } from '../test/helpers/party.ts'
import { benchParty, inParallel, machine, median, today } from './lib.ts'
import { sample } from './scale.ts'

const PEERS = 5
const CLIENTS = 16
const SIZES_KIB = [4, 16, 64, 128, 256]
/** Files put per size and layout: enough for a steady rate, few enough for a run of minutes. */
const BYTES_PER_RUN = 64 * 2 ** 20
const RUNS = 3

interface Rate {
  filesPerSec: number
  cpuMsPerFile: number
}

/** Puts `count` files of `size` bytes with CLIENTS workers; files/s and the party's CPU per file. */
async function putBurst(apis: string[], size: number, count: number, tag: string): Promise<Rate> {
  const body = Buffer.alloc(size, 7)
  const cpu = async (): Promise<number> =>
    (await Promise.all(apis.map((api) => sample(api, 'houseparty_process_process_cpu_seconds_total')))).reduce((a, b) => a + b, 0)
  const cpuBefore = await cpu()
  const started = performance.now()
  await inParallel(count, CLIENTS, async (i) => {
    const res = await fetch(fileUrl(apis[i % apis.length] as string, `inline/${tag}/${i}`), { method: 'PUT', body, signal: AbortSignal.timeout(120_000) })
    if (res.status !== 201) throw new Error(`put: ${res.status} ${await res.text()}`)
    await res.arrayBuffer()
  })
  const seconds = (performance.now() - started) / 1000
  return { filesPerSec: count / seconds, cpuMsPerFile: (((await cpu()) - cpuBefore) * 1000) / count }
}

/**
 * Where small files should stop being kept inline: the same burst of puts
 * with every file streamed to fragment files (--inline-bytes 0) and with
 * every file kept inline in its holders' tables, size by size, on two
 * parties of 5 peers run side by side (each run alternates between them).
 */
export async function inlineBench(): Promise<string> {
  const streamed = await benchParty(PEERS, ['--log-level', 'warn', '--inline-bytes', '0'])
  const inline = await benchParty(PEERS, ['--log-level', 'warn', '--inline-bytes', String(1024 * 1024)])
  const rows: string[] = []
  try {
    for (const { party } of [streamed, inline]) {
      const all = [...Array(PEERS).keys()]
      await Promise.all(all.map((i) => party.start(i, i === 0 ? [] : [0])))
      await waitForAgreement(party, all, PEERS)
    }
    const apisOf = (p: typeof streamed) => [...Array(PEERS).keys()].map((i) => p.party.peer(i).api)
    for (const kib of SIZES_KIB) {
      const size = kib * 1024
      const count = Math.min(2000, Math.floor(BYTES_PER_RUN / size))
      const s: Rate[] = []
      const n: Rate[] = []
      for (let r = 0; r < RUNS; r++) {
        s.push(await putBurst(apisOf(streamed), size, count, `${kib}-${r}`))
        n.push(await putBurst(apisOf(inline), size, count, `${kib}-${r}`))
      }
      const med = (xs: Rate[], k: keyof Rate) => median(xs.map((x) => x[k]))
      rows.push(
        `| ${kib} KiB | ${count} | ${med(s, 'filesPerSec').toFixed(0)} | ${med(n, 'filesPerSec').toFixed(0)} | ${(med(n, 'filesPerSec') / med(s, 'filesPerSec')).toFixed(2)}× | ${med(s, 'cpuMsPerFile').toFixed(1)} / ${med(n, 'cpuMsPerFile').toFixed(1)} ms |`,
      )
      console.error(`# inline: ${kib} KiB done`)
    }
  } finally {
    await streamed.cleanup()
    await inline.cleanup()
  }
  return `## Small files: inline or streamed

${today()}, ${machine()}. Two parties of ${PEERS} local peers (2+1) side by side: one streams every file to fragment files
(\`--inline-bytes 0\`), the other keeps every file of one stripe inline in its holders' \`fragments.db\`. ${CLIENTS} clients put
the same files to each, alternately, ${RUNS} runs per size (medians); CPU is the whole party's per file, from the peers' counters.

| file size | files per run | streamed, files/s | inline, files/s | inline ÷ streamed | CPU per file, streamed / inline |
|---|---|---|---|---|---|
${rows.join('\n')}
`
}
