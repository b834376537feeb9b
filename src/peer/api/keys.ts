import type { FastifyInstance, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { HousePartyError } from '../../shared/errors.ts'
import { checkAccessKeyId, type KeyStore, RIGHTS } from '../keys/index.ts'

const NewKey = z.object({ name: z.string().min(1).max(256), createBucket: z.boolean().optional() }).strict()
const Change = z
  .object({
    bucket: z.string().min(3).max(63).optional(),
    rights: z.array(z.enum(RIGHTS)).min(1).optional(),
    createBucket: z.boolean().optional(),
  })
  .strict()

/** Most bytes a key request's JSON body may have. */
const MAX_BODY = 16 * 1024

/**
 * S3 access keys, managed through the native API (behind its token, like
 * files): `houseparty key create|ls|rm|allow|deny` calls these. A secret is
 * answered once, when its key is made.
 */
export function registerKeyRoutes(scope: FastifyInstance, keys: KeyStore): void {
  scope.get('/keys', async () => ({ keys: await keys.list() }))
  scope.post('/keys', async (req, reply) => {
    const body = parse(NewKey, await jsonBody(req))
    return reply.status(201).send(await keys.create(body.name, body.createBucket ?? false))
  })
  scope.get('/keys/:id', async (req) => keys.get(idOf(req)))
  scope.delete('/keys/:id', async (req) => {
    const id = idOf(req)
    await keys.remove(id)
    return { accessKeyId: id, removed: true }
  })
  for (const [path, allowed] of [
    ['/keys/:id/allow', true],
    ['/keys/:id/deny', false],
  ] as const) {
    scope.post(path, async (req) => {
      const change = parse(Change, await jsonBody(req))
      if (change.bucket === undefined && change.createBucket === undefined) throw new HousePartyError('ERR_INVALID_ARGUMENT', 'name a bucket, or createBucket')
      return keys.change(idOf(req), change, allowed)
    })
  }
}

function idOf(req: FastifyRequest): string {
  return checkAccessKeyId((req.params as { id: string }).id)
}

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value)
  if (!parsed.success)
    throw new HousePartyError('ERR_INVALID_ARGUMENT', parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '))
  return parsed.data
}

/** The request's JSON body (the file routes' scope hands bodies over raw). */
async function jsonBody(req: FastifyRequest): Promise<unknown> {
  const pieces: Buffer[] = []
  let size = 0
  for await (const piece of req.raw as AsyncIterable<Buffer>) {
    size += piece.length
    if (size > MAX_BODY) throw new HousePartyError('ERR_INVALID_ARGUMENT', `the body is larger than ${MAX_BODY} bytes`)
    pieces.push(piece)
  }
  const text = Buffer.concat(pieces).toString('utf8')
  try {
    return text === '' ? {} : JSON.parse(text)
  } catch {
    throw new HousePartyError('ERR_INVALID_ARGUMENT', 'the body is not JSON')
  }
}
