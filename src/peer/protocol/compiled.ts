import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import { z } from 'zod'

/** A schema's check: the value itself when it matches (unknown object keys removed, as zod strips them), else why not. */
export type Check<T> = (value: unknown) => { success: true; data: T } | { success: false; message: string }

let ajv: Ajv2020 | undefined
const checks = new WeakMap<z.ZodType, Check<unknown>>()

/**
 * The check of a zod schema by a validator compiled from it (its JSON
 * Schema, compiled by Ajv on first use): every frame a peer takes is checked,
 * and a burst of small puts makes thousands a second. zod walks a schema
 * generically and copies what it parses; the compiled validator is straight
 * code over the value it was given: about 2.5 times faster on a put's
 * frames, and 3–4% of a small put's CPU across the party.
 *
 * The zod schema stays the one definition. Objects drop keys their schema
 * does not name, as zod's do (a newer peer's extra fields are not kept).
 * A union of objects must be tagged by `op` (every union of the protocol
 * is): the validator picks the branch by it, so one branch never strips a
 * value that another would have taken. A schema that cannot be compiled
 * (transforms and refinements, which a JSON Schema cannot carry; untagged
 * unions of objects; defaults, which zod fills in) keeps zod's own check.
 */
export function checkOf<S extends z.ZodType>(schema: S): Check<z.infer<S>> {
  let check = checks.get(schema)
  if (!check) {
    check = compile(schema) ?? zodCheck(schema)
    checks.set(schema, check)
  }
  return check as Check<z.infer<S>>
}

/**
 * A zod schema checked by its compiled validator (see checkOf), as a zod
 * schema: for a schema used where zod's own API is wanted (a reply schema
 * passed to a call).
 */
export function compiled<S extends z.ZodType>(schema: S): z.ZodType<z.infer<S>> {
  let message = 'the message is invalid'
  return z.custom<z.infer<S>>(
    (value) => {
      const result = checkOf(schema)(value)
      if (!result.success) message = result.message
      return result.success
    },
    { error: () => message },
  )
}

function zodCheck<S extends z.ZodType>(schema: S): Check<z.infer<S>> {
  return (value) => {
    const parsed = schema.safeParse(value)
    return parsed.success ? parsed : { success: false, message: parsed.error.issues[0]?.message ?? 'invalid' }
  }
}

function compile<S extends z.ZodType>(schema: S): Check<z.infer<S>> | undefined {
  let validate: ValidateFunction
  try {
    if (refined(schema)) return undefined
    // The output conversion refuses transforms (the input one would describe what goes in, and skip them).
    z.toJSONSchema(schema, { io: 'output', unrepresentable: 'throw' })
    const json = strict(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'throw' }))
    ajv ??= new Ajv2020({ strict: false, allErrors: false, discriminator: true, removeAdditional: true })
    validate = ajv.compile(json as JsonSchema)
  } catch {
    return undefined
  }
  return (value) => {
    if (validate(value)) return { success: true, data: value as z.infer<S> }
    const first = validate.errors?.[0]
    return { success: false, message: `${first?.instancePath || 'the message'} ${first?.message ?? 'is invalid'}` }
  }
}

/** Whether a schema or one inside it has a refinement: a JSON Schema drops those without a word. */
function refined(schema: z.ZodType, seen = new Set<unknown>()): boolean {
  if (seen.has(schema)) return false
  seen.add(schema)
  const def = schema._zod.def as { type: string; checks?: { _zod: { def: { check: string } } }[] }
  if (def.type === 'custom' || def.checks?.some((c) => c._zod.def.check === 'custom')) return true
  const inside = (value: unknown): boolean => {
    if (value instanceof z.ZodType) return refined(value, seen)
    if (Array.isArray(value)) return value.some(inside)
    return isSchema(value) && !('_zod' in value) && Object.values(value).some(inside)
  }
  return Object.values(def).some(inside)
}

type JsonSchema = { [key: string]: unknown }
const SCHEMA_MAPS = new Set(['properties', 'patternProperties', '$defs', 'definitions'])
const isSchema = (v: unknown): v is JsonSchema => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * The JSON Schema made to behave as zod does: objects with named properties
 * and no rule for others get `additionalProperties: false`, which the
 * validator (removeAdditional) takes as "remove them"; a union whose
 * branches all carry a constant `op` is picked by it (a discriminator). An
 * untagged union of several objects throws: removing keys while trying a
 * branch that then fails would spoil the value for the next.
 */
function strict(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(strict)
  if (!isSchema(node)) return node
  const out: JsonSchema = {}
  for (const [key, value] of Object.entries(node)) {
    // A map of names to schemas is not a schema itself: a property named `default` or `oneOf` is just a name.
    out[key] = SCHEMA_MAPS.has(key) && isSchema(value) ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, strict(v)])) : strict(value)
  }
  // zod fills in a default; the validator would leave the value out.
  if ('default' in out) throw new Error('a default')
  if (isSchema(out.properties) && out.additionalProperties === undefined) out.additionalProperties = false
  for (const key of ['oneOf', 'anyOf'] as const) {
    const branches = out[key]
    if (!Array.isArray(branches)) continue
    const tagged = branches.every((b) => isSchema(b) && isSchema(b.properties) && isSchema(b.properties.op) && b.properties.op.const !== undefined)
    if (tagged) {
      delete out[key]
      out.oneOf = branches
      out.discriminator = { propertyName: 'op' }
      // The discriminator passes over a value that is not an object: it must be one, with its tag.
      out.type = 'object'
      out.required = ['op']
    } else if (branches.filter((b) => isSchema(b) && b.type === 'object').length > 1) {
      throw new Error('an untagged union of objects')
    }
  }
  return out
}
