export { AuthLimiter } from './auth-limit.ts'
export { type FileRoutesOptions, registerFileRoutes } from './files.ts'
export { HTTP_CLOSE_GRACE_MS, httpComponent } from './serve.ts'
export { type ApiOptions, createApi } from './server.ts'
