import { XMLBuilder, XMLParser } from 'fast-xml-parser'
import { S3Error } from './errors.ts'

export const S3_XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/'
export const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@_', suppressEmptyNode: false })

/** An S3 response document: `{ Root: {...} }`, the namespace added to the root element. */
export function xmlDocument(root: string, body: Record<string, unknown>, namespaced = true): string {
  return XML_DECLARATION + xmlElement(root, body, namespaced)
}

/** The document without its declaration (for an answer whose declaration went first). */
export function xmlElement(root: string, body: Record<string, unknown>, namespaced = true): string {
  return builder.build({ [root]: namespaced ? { '@_xmlns': S3_XMLNS, ...body } : body })
}

// Keys stay text: "0123" is a key, not the number 123, and its spaces are its own.
const parser = new XMLParser({
  parseTagValue: false,
  trimValues: false,
  ignoreAttributes: true,
  removeNSPrefix: true,
  isArray: (name) => name === 'Object' || name === 'Part',
  processEntities: true,
  // Numeric character references too (Go's encoder, rclone's and restic's, writes a quote as &#34;).
  htmlEntities: true,
  // A request body never needs DOCTYPE entities: refusing them keeps entity expansion out.
  allowBooleanAttributes: false,
})

/** Most bytes a request's XML body may have (DeleteObjects with 1,000 long keys, CompleteMultipartUpload with 10,000 parts). */
export const MAX_XML_BODY = 2 * 1024 * 1024

export function parseXml(text: string): Record<string, unknown> {
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) throw new S3Error('MalformedXML', 'DOCTYPE and entity declarations are not accepted')
  try {
    const parsed = parser.parse(text, true) as unknown
    if (typeof parsed !== 'object' || parsed === null) throw new Error('not an element')
    return parsed as Record<string, unknown>
  } catch (err) {
    throw new S3Error('MalformedXML', `the XML you provided was not well-formed: ${(err as Error).message}`)
  }
}

/** The text of an element that must be text (an element with children, or absent, is undefined). */
export function textOf(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined
}

/** S3's timestamps: ISO 8601 with milliseconds, UTC. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString()
}
