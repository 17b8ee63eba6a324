// A small JSON Schema subset (what the routes use), checked on every input. The same schemas go
// into the OpenAPI document, so what is documented is what is enforced.
import { ApiError } from '../errors.js'

const typeOf = (value) => {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  if (Number.isInteger(value)) return 'integer'
  return typeof value
}

function fits(type, value) {
  const actual = typeOf(value)
  if (type === 'number') return actual === 'number' || actual === 'integer'
  return actual === type
}

/** The problems of `value` against `schema` (empty when it fits), each `{ path, message }`. */
export function problems(schema, value, path = '', out = []) {
  if (out.length >= 20) return out
  const types = schema.type === undefined ? null : [].concat(schema.type)
  if (types && !types.some((t) => fits(t, value))) {
    out.push({ path: path || '/', message: `must be ${types.join(' or ')}` })
    return out
  }
  if (schema.enum && !schema.enum.some((e) => e === value)) out.push({ path: path || '/', message: `must be one of ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}` })
  if (typeof value === 'string') {
    if (schema.minLength !== undefined && value.length < schema.minLength) out.push({ path: path || '/', message: `must be at least ${schema.minLength} characters` })
    if (schema.maxLength !== undefined && value.length > schema.maxLength) out.push({ path: path || '/', message: `must be at most ${schema.maxLength} characters` })
    if (schema.pattern && !new RegExp(schema.pattern, 'u').test(value)) out.push({ path: path || '/', message: `must match ${schema.pattern}` })
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) out.push({ path: path || '/', message: 'must be finite' })
    if (schema.minimum !== undefined && value < schema.minimum) out.push({ path: path || '/', message: `must be >= ${schema.minimum}` })
    if (schema.maximum !== undefined && value > schema.maximum) out.push({ path: path || '/', message: `must be <= ${schema.maximum}` })
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) out.push({ path: path || '/', message: `must have at least ${schema.minItems} items` })
    if (schema.maxItems !== undefined && value.length > schema.maxItems) out.push({ path: path || '/', message: `must have at most ${schema.maxItems} items` })
    if (schema.items) value.slice(0, 1000).forEach((item, i) => problems(schema.items, item, `${path}/${i}`, out))
  }
  if (typeOf(value) === 'object') {
    for (const key of schema.required ?? []) if (!(key in value)) out.push({ path: `${path}/${key}`, message: 'is required' })
    const props = schema.properties ?? {}
    for (const [key, item] of Object.entries(value)) {
      if (props[key]) problems(props[key], item, `${path}/${key}`, out)
      else if (schema.additionalProperties === false) out.push({ path: `${path}/${key}`, message: 'is not allowed' })
      else if (typeof schema.additionalProperties === 'object') problems(schema.additionalProperties, item, `${path}/${key}`, out)
    }
    if (schema.maxProperties !== undefined && Object.keys(value).length > schema.maxProperties) out.push({ path: path || '/', message: `must have at most ${schema.maxProperties} properties` })
  }
  return out
}

/** Throws a 400 `invalid_request` listing every problem of `value` (named `where`). */
export function check(schema, value, where) {
  const found = problems(schema, value)
  if (found.length) throw new ApiError(400, 'invalid_request', `invalid ${where}: ${found.map((p) => `${p.path} ${p.message}`).join('; ')}`, { problems: found })
  return value
}

/** Query strings: every value a string; integers and booleans converted by the schema. */
export function coerceQuery(schema, query) {
  const out = {}
  for (const [key, raw] of Object.entries(query)) {
    const type = [].concat(schema?.properties?.[key]?.type ?? 'string')[0]
    if (type === 'integer' && /^-?\d{1,15}$/.test(raw)) out[key] = Number(raw)
    else if (type === 'boolean' && (raw === 'true' || raw === 'false')) out[key] = raw === 'true'
    else out[key] = raw
  }
  return out
}

// Schema pieces the routes share.
export const S = {
  name: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' },
  jid: { type: 'string', minLength: 3, maxLength: 128, pattern: '^[0-9A-Za-z.:_-]+@(s\\.whatsapp\\.net|g\\.us|lid|broadcast|newsletter)$' },
  phone: { type: 'string', minLength: 7, maxLength: 20, pattern: '^\\+?[0-9][0-9 ()-]{5,22}$' },
  recipient: { type: 'string', minLength: 7, maxLength: 128, pattern: '^(\\+?[0-9][0-9 ()-]{5,22}|[0-9A-Za-z.:_-]+@(s\\.whatsapp\\.net|g\\.us|lid|broadcast|newsletter))$' },
  messageId: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[0-9A-Za-z._:-]+$' },
  text: { type: 'string', minLength: 1, maxLength: 65536 },
  bool: { type: 'boolean' },
  url: { type: 'string', minLength: 8, maxLength: 2048, pattern: '^https?://[^\\s]+$' },
}
