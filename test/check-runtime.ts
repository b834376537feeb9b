// npm test runs on the project's pinned Node (devDependency "node"), never the system one.
const major = Number(process.versions.node.split('.')[0])
console.log(`node --version: ${process.version}`)
if (major < 22) {
  console.error(`houseparty needs Node.js 22 or newer; this is ${process.version}. Run through npm (npm test) so the pinned runtime is used.`)
  process.exit(1)
}
