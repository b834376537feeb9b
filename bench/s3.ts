import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { type IncomingMessage, request } from 'node:http'
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import type { LocalParty } from '../src/cli/local-party.ts'
import { fileUrl } from '../test/helpers/files.ts'
import { startParty } from '../test/helpers/party.ts'
import { expectedHash, getHash, peersCpuSeconds, put, source } from './files.ts'
import { benchParty, inParallel, machine, median, today } from './lib.ts'

const MiB = 1024 * 1024
const GiB = 1024 * MiB
const RUNS = 3
const PEERS = 5
const SMALL = 2_000
const SMALL_BYTES = 4096
const CLIENTS = 16

/**
 * The S3 API against the native API, in one run on one party of 5 peers
 * (2+1): 1 GiB PutObject and GetObject with the AWS SDK for JavaScript v3
 * (default checksums on, as users run it) against a plain HTTP PUT and GET
 * of the same bytes; a 1 GiB multipart upload (@aws-sdk/lib-storage, 8
 * parts in flight); 4 KiB objects put by 16 clients, S3 against native.
 * Every client runs in this process, on the same 2 cores as the peers.
 */
export async function s3Bench(): Promise<string> {
  const { party, cleanup } = await benchParty(PEERS, ['--log-level', 'warn'])
  const blocks = Array.from({ length: 16 }, () => randomBytes(MiB))
  const want = expectedHash(GiB, blocks)
  try {
    await startParty(party, PEERS)
    const s3 = clientOf(party, 0)
    await s3.send(new CreateBucketCommand({ Bucket: 'bench' }))
    const rows = {
      nativePut: [] as number[],
      nativeGet: [] as number[],
      s3Put: [] as number[],
      s3Get: [] as number[],
      multipart: [] as number[],
      parts: [] as number[],
      complete: [] as number[],
    }
    const cpu = { nativePut: [] as number[], s3Put: [] as number[] }
    const client = { nativePut: [] as number[], s3Put: [] as number[] }
    const clientCpu = (since: NodeJS.CpuUsage): number => {
      const used = process.cpuUsage(since)
      return (used.user + used.system) / 1e6
    }
    for (let r = 0; r < RUNS; r++) {
      // Alternated, so a slower phase of the machine costs both APIs alike.
      let c0 = await peersCpuSeconds(party, PEERS)
      let u0 = process.cpuUsage()
      rows.nativePut.push(await timed(() => put(party.peer(r % PEERS).api, `native/big-${r}`, GiB, blocks)))
      cpu.nativePut.push((await peersCpuSeconds(party, PEERS)) - c0)
      client.nativePut.push(clientCpu(u0))
      c0 = await peersCpuSeconds(party, PEERS)
      u0 = process.cpuUsage()
      rows.s3Put.push(
        await timed(() =>
          s3.send(new PutObjectCommand({ Bucket: 'bench', Key: `big-${r}`, Body: source(GiB, blocks), ContentLength: GiB })).then(() => undefined),
        ),
      )
      cpu.s3Put.push((await peersCpuSeconds(party, PEERS)) - c0)
      client.s3Put.push(clientCpu(u0))
      rows.nativeGet.push(await timed(async () => check(await getHash(party.peer((r + 1) % PEERS).api, `native/big-${r}`), want)))
      rows.s3Get.push(await timed(async () => check(await s3Hash(clientOf(party, (r + 1) % PEERS), 'bench', `big-${r}`), want)))
      const upload = new Upload({
        client: clientOf(party, (r + 2) % PEERS),
        params: { Bucket: 'bench', Key: `multi-${r}`, Body: source(GiB, blocks) },
        queueSize: 8,
        partSize: 16 * MiB,
      })
      rows.multipart.push(await timed(() => upload.done().then(() => undefined)))
      check(await s3Hash(s3, 'bench', `multi-${r}`), want)
      const phases = await multipartPhases(clientOf(party, (r + 3) % PEERS), `phased-${r}`, blocks)
      rows.parts.push(phases.parts)
      rows.complete.push(phases.complete)
      // One GiB at a time on the volumes: what was measured goes before the next run.
      await fetch(fileUrl(party.peer(0).api, `native/big-${r}`), { method: 'DELETE' })
      for (const key of [`big-${r}`, `multi-${r}`, `phased-${r}`]) await fetch(fileUrl(party.peer(0).api, `bench/${key}`), { method: 'DELETE' })
    }
    const small = Buffer.alloc(SMALL_BYTES, 7)
    const nativeSmall: number[] = []
    const s3Small: number[] = []
    const clients = Array.from({ length: PEERS }, (_, i) => clientOf(party, i))
    const smallCpu = { native: [] as number[], s3: [] as number[], nativeClient: [] as number[], s3Client: [] as number[] }
    for (let r = 0; r < RUNS; r++) {
      let c0 = await peersCpuSeconds(party, PEERS)
      let u0 = process.cpuUsage()
      nativeSmall.push(SMALL / (await timed(() => inParallel(SMALL, CLIENTS, (i) => putSmall(party.peer(i % PEERS).api, `small-native/${r}/${i}`, small)))))
      smallCpu.native.push((((await peersCpuSeconds(party, PEERS)) - c0) * 1000) / SMALL)
      smallCpu.nativeClient.push((clientCpu(u0) * 1000) / SMALL)
      c0 = await peersCpuSeconds(party, PEERS)
      u0 = process.cpuUsage()
      s3Small.push(
        SMALL /
          (await timed(() =>
            inParallel(SMALL, CLIENTS, (i) =>
              (clients[i % PEERS] as S3Client).send(new PutObjectCommand({ Bucket: 'bench', Key: `small/${r}/${i}`, Body: small })).then(() => undefined),
            ),
          )),
      )
      smallCpu.s3.push((((await peersCpuSeconds(party, PEERS)) - c0) * 1000) / SMALL)
      smallCpu.s3Client.push((clientCpu(u0) * 1000) / SMALL)
    }
    const rate = (seconds: number[]): number => GiB / median(seconds) / 1e9
    const line = (what: string, s3: number, native: number, unit: string, digits = 2): string =>
      `| ${what} | ${s3.toFixed(digits)} ${unit} | ${native.toFixed(digits)} ${unit} | ${(s3 / native).toFixed(2)} |`
    return [
      `## S3 API against the native API`,
      '',
      `${today()}, ${machine()}. \`npm run bench -- s3\`: ${PEERS} local peers (2+1); medians of ${RUNS} runs, each run doing both APIs in turn. S3 through \`@aws-sdk/client-s3\` (default checksums: CRC32 computed by the client and checked by the peer), native through plain \`node:http\`; all clients in one process on the same cores as the peers.`,
      '',
      '| | S3 | native | S3 / native |',
      '|---|---|---|---|',
      line('PutObject, 1 GiB, one request', rate(rows.s3Put), rate(rows.nativePut), 'GB/s'),
      line('GetObject, 1 GiB (read and hashed by the client)', rate(rows.s3Get), rate(rows.nativeGet), 'GB/s'),
      line('CPU-seconds of the peers per GiB put', median(cpu.s3Put), median(cpu.nativePut), 's', 1),
      line('CPU-seconds of the client per GiB put', median(client.s3Put), median(client.nativePut), 's', 1),
      line(`${SMALL} objects of 4 KiB, ${CLIENTS} clients`, median(s3Small), median(nativeSmall), 'objects/s', 0),
      line('CPU-ms of the peers per 4 KiB object', median(smallCpu.s3), median(smallCpu.native), 'ms'),
      line('CPU-ms of the client per 4 KiB object', median(smallCpu.s3Client), median(smallCpu.nativeClient), 'ms'),
      '',
      'An S3 put costs the peers an MD5 of every byte beyond what a native put costs (the ETag S3 clients check; 0.8 GiB/s on one core here, computed in the coding worker beside the sha256) and the checksum the SDK sends; the SDK costs the client more CPU than a plain HTTP PUT, on the same two cores. For small objects the peers spend about the same per object through either API: the difference in rate is the SDK client’s CPU.',
      '',
      `Multipart upload of 1 GiB (\`@aws-sdk/lib-storage\`, 16 MiB parts, 8 in flight): ${rate(rows.multipart).toFixed(2)} GB/s (runs ${rows.multipart.map((s) => (GiB / s / 1e9).toFixed(2)).join(', ')}). The same upload in its two phases (UploadPart, 8 in flight, then CompleteMultipartUpload): parts ${rate(rows.parts).toFixed(2)} GB/s, then ${median(rows.complete).toFixed(1)} s to complete. The object is recorded as made of its 64 parts, no byte copied; completing reads the parts once, in order, for the sha256 of the whole (what the native API and the CLI verify a file by).`,
      '',
    ].join('\n')
  } finally {
    await cleanup()
  }
}

/** A 1 GiB multipart upload done by hand: 64 parts of 16 MiB, 8 in flight, then the completion, each phase timed. */
async function multipartPhases(s3: S3Client, Key: string, blocks: Buffer[]): Promise<{ parts: number; complete: number }> {
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'bench', Key }))
  const etags: string[] = []
  const partBytes = 16 * MiB
  const parts = await timed(() =>
    inParallel(GiB / partBytes, 8, async (i) => {
      const Body = Buffer.concat(Array.from({ length: 16 }, (_, j) => blocks[(i * 16 + j) % blocks.length] as Buffer))
      etags[i] = (await s3.send(new UploadPartCommand({ Bucket: 'bench', Key, UploadId, PartNumber: i + 1, Body }))).ETag as string
    }),
  )
  const complete = await timed(() =>
    s3.send(
      new CompleteMultipartUploadCommand({ Bucket: 'bench', Key, UploadId, MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) } }),
    ),
  )
  return { parts, complete }
}

function clientOf(party: LocalParty, peer: number): S3Client {
  return new S3Client({
    endpoint: `http://127.0.0.1:${party.peer(peer).s3Port}`,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: party.s3Key.accessKeyId, secretAccessKey: party.s3Key.secretAccessKey },
  })
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now()
  await work()
  return (performance.now() - t0) / 1000
}

function check(got: string, want: string): void {
  if (got !== want) throw new Error(`read back sha256 ${got}, expected ${want}`)
}

async function s3Hash(s3: S3Client, Bucket: string, Key: string): Promise<string> {
  const got = await s3.send(new GetObjectCommand({ Bucket, Key }))
  const h = createHash('sha256')
  for await (const chunk of got.Body as AsyncIterable<Uint8Array>) h.update(chunk)
  return h.digest('hex')
}

async function putSmall(api: string, name: string, body: Buffer): Promise<void> {
  const req = request(fileUrl(api, name), { method: 'PUT', headers: { 'content-length': String(body.length) } })
  req.end(body)
  const [res] = (await once(req, 'response')) as [IncomingMessage]
  res.resume()
  if (res.statusCode !== 201) throw new Error(`put ${name}: ${res.statusCode}`)
}
