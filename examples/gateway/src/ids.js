// Identifiers, tokens and their hashes.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

/** A time-ordered, unique event id: 12 hex digits of milliseconds then 16 random hex digits. */
export function eventId(now = Date.now()) {
  return `evt_${now.toString(16).padStart(12, '0')}${randomBytes(8).toString('hex')}`
}

export function randomId(prefix) {
  return `${prefix}_${randomBytes(10).toString('hex')}`
}

/** A new secret token (what the caller keeps; the gateway stores its hash). */
export function newToken() {
  return randomBytes(24).toString('base64url')
}

/** The stored form of a token: SHA-256 (tokens are random, so no slow hash is needed). */
export function hashToken(token) {
  return createHash('sha256').update(String(token)).digest()
}

/** Compares a presented token with a stored hash in constant time. */
export function tokenMatches(token, hash) {
  if (typeof token !== 'string' || !hash) return false
  const presented = hashToken(token)
  return presented.length === hash.length && timingSafeEqual(presented, hash)
}
