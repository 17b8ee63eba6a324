// The OpenAPI 3.1 document, generated from the route table: the schemas the routes enforce are
// the ones documented.
const ERROR = {
  type: 'object',
  required: ['error'],
  properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } },
}

const EVOLUTION_ERROR = {
  type: 'object',
  required: ['status', 'error', 'response'],
  properties: { status: { type: 'integer' }, error: { type: 'string' }, response: { type: 'object', properties: { message: { type: 'array', items: { type: 'string' } } } } },
}

const STATUS_TEXT = { 200: 'OK', 201: 'Created', 202: 'Accepted', 400: 'Invalid input', 401: 'Missing or invalid key', 403: 'Key of another instance, or not the global key', 404: 'Not found', 409: 'Not possible in the current state', 413: 'Body too large', 429: 'Rate limited, or send queue full', 500: 'Failed, with the reason', 502: 'WhatsApp refused, with its code', 504: 'Timed out' }

export function openApiDocument(routes, { version, serverUrl }) {
  const paths = {}
  for (const route of routes) {
    const path = route.path
    const operation = {
      operationId: `${route.method.toLowerCase()}${path.replace(/\{(\w+)\}/g, 'By_$1').replace(/[^A-Za-z0-9]+(.)?/g, (_, c) => (c ? c.toUpperCase() : ''))}`,
      summary: route.summary,
      tags: [route.tag ?? 'other'],
      parameters: [],
      responses: {},
    }
    if (route.auth !== 'public') operation.security = [{ apikey: [] }, { bearer: [] }]
    else operation.security = []
    for (const [name, schema] of Object.entries(route.params ?? {})) operation.parameters.push({ name, in: 'path', required: true, schema })
    for (const [name, schema] of Object.entries(route.query?.properties ?? {})) operation.parameters.push({ name, in: 'query', required: false, schema })
    if (route.body) operation.requestBody = { required: !route.bodyOptional, content: { 'application/json': { schema: route.body } } }
    const ok = route.status ?? (route.method === 'POST' && route.format === 'evolution' ? 201 : 200)
    const contentType = route.path === '/' ? 'text/html' : route.path === '/metrics' ? 'text/plain' : route.path === '/events' ? 'text/event-stream' : 'application/json'
    operation.responses[ok] = { description: STATUS_TEXT[ok] ?? 'OK', content: { [contentType]: { schema: contentType === 'application/json' ? {} : { type: 'string' } } } }
    const errorSchema = route.format === 'evolution' ? EVOLUTION_ERROR : ERROR
    const codes = [400, 404, 429, 500]
    if (route.auth !== 'public') codes.push(401, 403)
    if (route.body) codes.push(413)
    if (/connect|messages|chats|labels|restart|logout|reconnect|markMessageAsRead|send[A-Z]|archiveChat|markChatUnread|handleLabel/.test(path)) codes.push(409, 502, 504)
    for (const code of codes.sort()) operation.responses[code] = { description: STATUS_TEXT[code], content: { 'application/json': { schema: errorSchema } } }
    paths[path] ??= {}
    paths[path][route.method.toLowerCase()] = operation
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'walink gateway',
      version,
      description: 'A multi-instance WhatsApp REST gateway on the walink npm package: a native API (`/instances/...`) and an Evolution API v2 compatible surface (tag `evolution`). Authenticate with the global key or an instance token in `apikey` or `Authorization: Bearer`.',
    },
    servers: serverUrl ? [{ url: serverUrl }] : [],
    components: {
      securitySchemes: {
        apikey: { type: 'apiKey', in: 'header', name: 'apikey' },
        bearer: { type: 'http', scheme: 'bearer' },
      },
    },
    paths,
  }
}
