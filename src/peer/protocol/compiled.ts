import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import { z } from 'zod'

let ajv: Ajv2020 | undefined

/**
 * A zod schema checked by a validator compiled from it (its JSON Schema,
 * compiled by Ajv on first use), for messages big enough that zod's cost
 * per object shows: a listing page carries thousands of records, and the
 * peer merging a page checks every guest's, about four times faster so.
 * The zod schema stays the one definition; a schema with transforms or
 * refinements cannot be compiled (a JSON Schema cannot carry them, and the
 * conversion refuses them rather than drop them).
 */
export function compiled<S extends z.ZodType>(schema: S): z.ZodType<z.infer<S>> {
  let check: ValidateFunction | undefined
  const validator = (): ValidateFunction => {
    ajv ??= new Ajv2020({ strict: false, allErrors: false })
    check ??= ajv.compile(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'throw' }))
    return check
  }
  return z.custom<z.infer<S>>((value) => validator()(value), {
    error: () => {
      const first = validator().errors?.[0]
      return `${first?.instancePath || 'the message'} ${first?.message ?? 'is invalid'}`
    },
  })
}
