// A PostgreSQL server for the tests: its own cluster in a temporary directory, on a loopback port,
// started with the Debian binaries (`./build.sh setup` installs them) and stopped at the end; no
// system service. PostgreSQL refuses to run as root, so as root the server runs as the `postgres`
// user (the Debian package creates it) through runuser. WALINK_TEST_POSTGRES_URL points the tests
// at a server of your own instead (its databases are created and left there).
import { execFileSync, spawnSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** The directory holding initdb and pg_ctl, or null. */
export function postgresBinDir() {
  const onPath = spawnSync('sh', ['-c', 'command -v pg_ctl'], { encoding: 'utf8' }).stdout.trim()
  if (onPath) return join(onPath, '..')
  const root = '/usr/lib/postgresql'
  if (!existsSync(root)) return null
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'pg_ctl'))).sort((a, b) => Number(b) - Number(a))
  return versions.length ? join(root, versions[0], 'bin') : null
}

/** True when the PostgreSQL tests must run (CI, ./build.sh test): a missing server fails them. */
export const postgresRequired = () => ['CI', 'WALINK_REQUIRE_MOCK', 'WALINK_REQUIRE_POSTGRES'].some((n) => process.env[n] && process.env[n] !== '0' && process.env[n] !== 'false')

async function freePort() {
  const server = createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Creates database `name` through `adminUrl`; resolves with its URL under `base`. */
async function createDatabase(adminUrl, base, name) {
  const pg = (await import('pg')).default
  const client = new pg.Client({ connectionString: adminUrl })
  await client.connect()
  try {
    await client.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`)
  } finally {
    await client.end()
  }
  return `${base}/${name}`
}

/**
 * Starts a scratch server; resolves with `{ url(db), createDatabase(name), stopServer(),
 * startServer(), stop() }` (the last one also removes the directory).
 */
export async function startPostgres() {
  const bin = postgresBinDir()
  if (!bin) throw new Error('PostgreSQL is not installed (./build.sh setup installs the Debian package postgresql)')
  const root = process.getuid?.() === 0
  const dir = mkdtempSync(join(tmpdir(), 'walink-pg-'))
  const data = join(dir, 'data')
  const port = await freePort()
  let uid = null
  if (root) {
    const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' })
    if (id.status !== 0) throw new Error('running as root needs the postgres user (the Debian package postgresql creates it)')
    uid = Number(id.stdout.trim())
    const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim())
    chownSync(dir, uid, gid)
  }
  const run = (tool, args) => {
    const [command, full] = root ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]] : [join(bin, tool), args]
    return execFileSync(command, full, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' })
  }
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8'])
  // fsync stays on (the durability the tests rely on); small buffers: many test databases.
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=32MB`
  const startServer = () => run('pg_ctl', ['-D', data, '-o', options, '-l', join(dir, 'log'), '-w', '-t', '60', 'start'])
  const stopServer = (mode = 'fast') => run('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop'])
  startServer()
  const base = `postgres://postgres@127.0.0.1:${port}`
  return {
    port,
    url: (db = 'postgres') => `${base}/${db}`,
    createDatabase: (name) => createDatabase(`${base}/postgres`, base, name),
    startServer,
    stopServer,
    stopSync() {
      try {
        stopServer('immediate')
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true })
    },
    async stop() {
      this.stopSync()
    },
  }
}

/** The server the tests use: WALINK_TEST_POSTGRES_URL's, or a scratch one of their own. */
export async function postgresForTests() {
  const given = process.env.WALINK_TEST_POSTGRES_URL
  if (!given) return startPostgres()
  const base = given.replace(/\/[^/]*$/, '')
  return {
    url: (db = 'postgres') => `${base}/${db}`,
    createDatabase: (name) => createDatabase(given, base, name),
    startServer() {
      throw new Error('WALINK_TEST_POSTGRES_URL: the tests cannot restart a server of yours')
    },
    stopServer() {
      throw new Error('WALINK_TEST_POSTGRES_URL: the tests cannot stop a server of yours')
    },
    stopSync() {},
    async stop() {},
  }
}
