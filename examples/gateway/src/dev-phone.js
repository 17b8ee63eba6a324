// Offline mode only: routes that let the page play the simulated phones of the mock-server
// (scan the QR, type the pairing code, send a text to an instance). Never loaded in production.
import { ApiError } from './errors.js'
import { S } from './http/schema.js'

export function devPhoneFeature(mock, phones) {
  const phoneOf = (value) => value ?? phones[0]
  const runtimeOf = async (ctx, name) => {
    const row = await ctx.instance(name)
    const runtime = ctx.gateway.runtime(row)
    if (!runtime) throw new ApiError(409, 'not_running', `instance ${name} is not running: connect it first`)
    return { row, runtime }
  }
  const body = (extra) => ({ type: 'object', additionalProperties: false, required: ['instance'], properties: { instance: S.name, phone: { type: 'string', pattern: '^[0-9]{7,15}$' }, ...extra } })
  return {
    name: 'dev-phone',
    routes: [
      { method: 'GET', path: '/dev/phone', auth: 'global', tag: 'offline', summary: 'Offline mode: the simulated phones.', handler: () => ({ body: { controlUrl: mock.controlUrl, phones } }) },
      {
        method: 'POST',
        path: '/dev/phone/scan',
        auth: 'global',
        tag: 'offline',
        body: body({}),
        summary: "Offline mode: the phone scans the instance's QR.",
        handler: async (ctx) => {
          const { runtime } = await runtimeOf(ctx, ctx.body.instance)
          if (!runtime.qr) throw new ApiError(409, 'no_qr', 'the instance shows no QR')
          return { body: await mock.control('POST', `/accounts/${phoneOf(ctx.body.phone)}/scan`, { qr: runtime.qr.payload }) }
        },
      },
      {
        method: 'POST',
        path: '/dev/phone/code',
        auth: 'global',
        tag: 'offline',
        body: body({}),
        summary: "Offline mode: the phone types the instance's pairing code.",
        handler: async (ctx) => {
          const { runtime } = await runtimeOf(ctx, ctx.body.instance)
          if (!runtime.code) throw new ApiError(409, 'no_code', 'the instance has no pairing code')
          return { body: await mock.control('POST', `/accounts/${runtime.code.phone}/code`, { code: runtime.code.code }) }
        },
      },
      {
        method: 'POST',
        path: '/dev/phone/send',
        auth: 'global',
        tag: 'offline',
        body: { type: 'object', additionalProperties: false, required: ['instance', 'from', 'text'], properties: { instance: S.name, from: { type: 'string', pattern: '^[0-9]{7,15}$' }, text: S.text } },
        summary: "Offline mode: another account's phone sends the instance a text.",
        handler: async (ctx) => {
          const row = await ctx.instance(ctx.body.instance)
          if (!row.jid) throw new ApiError(409, 'not_paired', 'the instance is not paired')
          return { body: await mock.control('POST', `/accounts/${ctx.body.from}/send`, { to: row.jid.split('@')[0].split(':')[0], text: ctx.body.text }) }
        },
      },
    ],
  }
}
