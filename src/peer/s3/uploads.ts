import { randomBytes } from 'node:crypto'
import { mapLimited } from '../../shared/concurrency.ts'
import { isHousePartyError } from '../../shared/errors.ts'
import type { FileService } from '../files/index.ts'
import { ObjectMeta, partsOf } from '../protocol/index.ts'
import { S3Error } from './errors.ts'
import { fileOf, S3_STATE_PREFIX } from './names.ts'
import { removeQuietly } from './objects.ts'

/**
 * Multipart uploads in progress, kept as ordinary files under
 * `.s3/uploads/BUCKET/UPLOAD-ID/`: `upload` (the key, who started it, when,
 * and the object's headers) and `part.NNNNN`, one file per part, coded and
 * placed as it arrives. CompleteMultipartUpload records the object as made
 * of those part files (no byte copied) and removes `upload`; the parts then
 * belong to the object and go when it does.
 */
export const UPLOADS_PREFIX = `${S3_STATE_PREFIX}uploads/`
export const MAX_PART_NUMBER = 10_000
/** Part files removed at a time when an upload ends. */
export const REMOVED_AT_ONCE = 16

export interface UploadInfo {
  key: string
  initiated: number
  owner: string
  meta: ObjectMeta
}

export function uploadDir(bucket: string, uploadId: string): string {
  return `${UPLOADS_PREFIX}${bucket}/${uploadId}/`
}

/**
 * A new file for one upload of part `part`: each upload of a part gets a file of its own, so a part uploaded
 * again (a client's retry, or a first attempt finishing late, after the completion) never replaces a file an
 * object was made of. The completion takes, for each number, the newest file with the ETag it was given.
 */
export function partFile(bucket: string, uploadId: string, part: number): string {
  return `${uploadDir(bucket, uploadId)}part.${String(part).padStart(5, '0')}.${randomBytes(4).toString('hex')}`
}

/** The part number of a part file's name, or undefined for another file of the upload. */
export function partNumberOf(name: string): number | undefined {
  const m = /\/part\.(\d{5})\.[0-9a-f]{8}$/.exec(name)
  return m ? Number(m[1]) : undefined
}

/** Of several uploads of one part number, the newest (versions sort by time). */
export function newestPerNumber(files: readonly PartFile[]): PartFile[] {
  const newest = new Map<number, PartFile>()
  for (const f of files) {
    const seen = newest.get(f.number)
    if (!seen || f.version > seen.version) newest.set(f.number, f)
  }
  return [...newest.values()].sort((a, b) => a.number - b.number)
}

/** Upload IDs sort by when they began (base-36 milliseconds), then 96 random bits. */
export function newUploadId(now: number): string {
  return `${now.toString(36).padStart(9, '0')}${randomBytes(12).toString('hex')}`
}

export function checkUploadId(uploadId: string | undefined): string {
  if (uploadId === undefined || !/^[0-9a-z]{9}[0-9a-f]{24}$/.test(uploadId)) throw new S3Error('NoSuchUpload', 'the specified upload does not exist')
  return uploadId
}

export function checkPartNumber(text: string | undefined): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 1 || n > MAX_PART_NUMBER)
    throw new S3Error('InvalidArgument', `part number must be an integer between 1 and ${MAX_PART_NUMBER}`)
  return n
}

export async function writeInfo(files: FileService, bucket: string, uploadId: string, info: UploadInfo, signal?: AbortSignal): Promise<void> {
  const content = Buffer.from(JSON.stringify(info))
  await files.putBytes(`${uploadDir(bucket, uploadId)}upload`, content, signal)
}

/** The upload's state; NoSuchUpload once it was completed or aborted (or never began), or when `key` is not its key. */
export async function readInfo(files: FileService, bucket: string, uploadId: string, key?: string, signal?: AbortSignal): Promise<UploadInfo> {
  let info: UploadInfo
  try {
    const raw = JSON.parse((await files.readBytes(`${uploadDir(bucket, uploadId)}upload`, signal)).toString('utf8')) as UploadInfo
    info = { key: String(raw.key), initiated: Number(raw.initiated), owner: String(raw.owner), meta: ObjectMeta.parse(raw.meta ?? {}) }
  } catch (err) {
    if (isHousePartyError(err, 'ERR_FILE_NOT_FOUND'))
      throw new S3Error('NoSuchUpload', 'the specified upload does not exist; it may have been aborted or completed')
    throw err
  }
  if (key !== undefined && info.key !== key) throw new S3Error('NoSuchUpload', 'the specified upload does not exist for this key')
  return info
}

/** Every upload of a bucket still in progress, with its ID, oldest first. */
export async function uploadsOf(files: FileService, bucket: string, signal?: AbortSignal): Promise<(UploadInfo & { uploadId: string })[]> {
  const out: (UploadInfo & { uploadId: string })[] = []
  for (let token = ''; ; ) {
    const page = await files.page({ prefix: `${UPLOADS_PREFIX}${bucket}/`, delimiter: '/', after: '', token, limit: 1000 }, signal)
    const found = await Promise.all(
      page.prefixes.map(async (prefix) => {
        const uploadId = prefix.slice(`${UPLOADS_PREFIX}${bucket}/`.length, -1)
        try {
          return { ...(await readInfo(files, bucket, uploadId, undefined, signal)), uploadId }
        } catch (err) {
          // Parts whose upload was completed (they belong to an object now) or is being aborted.
          if (err instanceof S3Error && err.code === 'NoSuchUpload') return undefined
          throw err
        }
      }),
    )
    for (const f of found) if (f) out.push(f)
    if (!page.truncated || !page.next) return out
    token = page.next
  }
}

/** The part files of an upload, in part order: [part number, file name]. */
export interface PartFile {
  number: number
  name: string
  version: string
  size: number
  etag: string
  created: number
}

export async function partFilesOf(files: FileService, bucket: string, uploadId: string, signal?: AbortSignal): Promise<PartFile[]> {
  const out: PartFile[] = []
  for (let token = ''; ; ) {
    const page = await files.page({ prefix: `${uploadDir(bucket, uploadId)}part.`, delimiter: '', after: '', token, limit: 1000 }, signal)
    for (const f of page.files) {
      const number = partNumberOf(f.name)
      if (number !== undefined) out.push({ number, name: f.name, version: f.version, size: f.size, etag: f.etag ?? f.hash, created: f.created })
    }
    if (!page.truncated || !page.next) return out
    token = page.next
  }
}

/**
 * Ends an upload that was not completed: its parts and its `upload` file go.
 * Parts an object was made of (a complete that recorded the object and then
 * died before removing `upload`) stay: they are the object's now.
 */
export async function abortUpload(files: FileService, bucket: string, uploadId: string, info: UploadInfo, signal?: AbortSignal): Promise<void> {
  const owned = await objectParts(files, bucket, info.key, signal)
  const parts = await partFilesOf(files, bucket, uploadId, signal)
  await mapLimited(
    parts.filter((p) => !owned.has(p.name)),
    REMOVED_AT_ONCE,
    (part) => removeQuietly(files, part.name, signal),
  )
  await removeQuietly(files, `${uploadDir(bucket, uploadId)}upload`, signal)
}

async function objectParts(files: FileService, bucket: string, key: string, signal?: AbortSignal): Promise<Set<string>> {
  try {
    const record = await files.record(fileOf(bucket, key), signal)
    return new Set(partsOf(record).map((p) => p.name))
  } catch (err) {
    if (isHousePartyError(err, 'ERR_FILE_NOT_FOUND')) return new Set()
    throw err
  }
}
