// Status posts (`status@broadcast`) through walink-sim's mock-server from Node: a phone's post
// reaches a walink client as a message event marked `status` with its poster, the client's read
// receipt reaches the poster's phone, and a text post the client sends with `sendStatus`
// reaches the phone and the walink client it names, and not an account it does not name.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { startMockServer, withMockServer } from './support/mock-server.js'
import { pairedWalinkClient } from './support/walink-client.js'

const STATUS = 'status@broadcast'

withMockServer(test, 'status tests', () => {
  let server
  before(async () => {
    server = await startMockServer()
  })
  after(() => server?.stop())

  /** Polls `fetch` until it returns a value, or throws after `ms`. */
  const eventually = async (what, fetch, ms = 20_000) => {
    const deadline = Date.now() + ms
    for (;;) {
      const found = await fetch()
      if (found) return found
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
  }

  const phoneStatus = (phone, id) => eventually(`${phone}'s phone to get ${id}`, async () => {
    const { messages } = await server.control('GET', `/accounts/${phone}/messages`)
    return messages.find((m) => m.id === id && m.chat === STATUS)
  })

  test('status posts both ways: marked as status, read receipts, sent to the recipients named only', async () => {
    const erin = await pairedWalinkClient(server, '15550005555', 'Erin')
    const fred = await pairedWalinkClient(server, '15550006666', 'Fred')
    await server.control('POST', '/accounts', { phone: '15550007777', name: 'Gina' })
    const erinJid = '15550005555@s.whatsapp.net'
    const fredJid = '15550006666@s.whatsapp.net'

    // Fred's phone posts; Erin's client gets it as a status post from Fred.
    const { id: posted } = await server.control('POST', '/accounts/15550006666/status', {
      recipients: ['15550005555'],
      text: 'at the beach',
    })
    const atErin = await erin.waitFor((e) => e.type === 'message' && e.id === posted)
    assert.equal(atErin.status, true)
    assert.equal(atErin.chat, STATUS)
    assert.equal(atErin.sender, fredJid)
    assert.equal(atErin.text, 'at the beach')
    assert.equal(atErin.message.extendedTextMessage.text, 'at the beach')
    assert.equal(typeof atErin.message.extendedTextMessage.backgroundArgb, 'number')

    // Erin views it: the read receipt reaches Fred's phone, naming Fred as the poster.
    await erin.connection.markRead(STATUS, [posted], fredJid)
    const read = await eventually('the read receipt', async () => {
      const { receipts } = await server.control('GET', '/accounts/15550006666/status-receipts')
      return receipts.find((r) => r.id === posted && r.type === 'read')
    })
    assert.match(read.viewer, /^15550005555(:\d+)?@s\.whatsapp\.net$/)
    assert.equal(read.participant, fredJid)

    // Erin posts a text status for Fred only.
    const sent = await erin.connection.sendStatus([fredJid], {
      extendedTextMessage: { text: 'new job!', backgroundArgb: 0xff336699, font: 2 },
    })
    assert.equal(sent.kind, 'messageSent')
    const atFredsPhone = await phoneStatus('15550006666', sent.id)
    assert.equal(atFredsPhone.text, 'new job!')
    assert.equal(atFredsPhone.error, null)
    const atFred = await fred.waitFor((e) => e.type === 'message' && e.id === sent.id)
    assert.equal(atFred.status, true)
    assert.equal(atFred.sender.replace(/:\d+@/, '@'), erinJid)
    assert.equal(atFred.message.extendedTextMessage.font, 2)
    const { messages: ginas } = await server.control('GET', '/accounts/15550007777/messages')
    assert.ok(!ginas.some((m) => m.id === sent.id), 'an account not named gets nothing')

    // A live 1:1 message is not a status post.
    await fred.connection.sendText(erinJid, 'congrats')
    const text = await erin.waitFor((e) => e.type === 'message' && e.text === 'congrats')
    assert.equal(text.status, false)

    await assert.rejects(erin.connection.sendStatus([], { conversation: 'x' }), (error) => error.code === 'invalid_address')
    await erin.connection.close()
    await fred.connection.close()
  })
})
