export { type FileRoutesOptions, registerFileRoutes } from './files.ts'
export { type ApiOptions, createApi } from './server.ts'
