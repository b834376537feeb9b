export * from './messages.ts'
export * from './names.ts'
export * from './pint.ts'
export * from './replies.ts'
