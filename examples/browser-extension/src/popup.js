// The popup: asks the worker to make sure the client runs, then shows the client's view (the
// offscreen document's) and follows its updates. Every text from the network goes in through
// textContent, never as HTML.
import { drawQr } from './qr.js'
import { OFFSCREEN, POPUP, WORKER } from './messages.js'

const $ = (id) => document.getElementById(id)

const STATE_LABELS = {
  starting: 'Starting…',
  disconnected: 'Disconnected',
  connecting: 'Connecting…',
  handshaking: 'Connecting…',
  awaitingPairing: 'Not linked',
  loggingIn: 'Logging in…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  loggedOut: 'Logged out',
  replaced: 'Opened elsewhere',
  clientOutdated: 'Update needed',
}

let view = null
let openChat = null
let drawnQr = null

/** Sends a request to the worker or the offscreen document; throws its error. */
async function ask(to, request) {
  const answer = await chrome.runtime.sendMessage({ ...request, to })
  if (answer?.error) throw Object.assign(new Error(answer.error.message), { code: answer.error.code })
  return answer
}

function showError(error) {
  $('error').hidden = !error
  $('error').textContent = error ? `${error.code ? error.code + ': ' : ''}${error.message}` : ''
}

/** What to call a chat: its phone number, or the group's id. */
function chatName(jid) {
  const [user, server] = jid.split('@')
  return server === 's.whatsapp.net' ? `+${user.split(':')[0]}` : jid
}

function render() {
  const state = view?.state?.kind ?? 'starting'
  $('state').dataset.state = state
  $('state').textContent = STATE_LABELS[state] ?? state
  document.body.dataset.state = state

  const linked = view?.me && !['loggedOut', 'awaitingPairing'].includes(state)
  const linking = !linked && state !== 'loggedOut' && (view?.qr || view?.code || view?.qrExhausted || state === 'awaitingPairing')
  $('link').hidden = !linking
  $('chats').hidden = !linked
  $('logged-out').hidden = state !== 'loggedOut'

  if (linking) {
    const qr = view.code ? null : view.qr
    $('qr-box').hidden = !qr
    if (qr && qr !== drawnQr) {
      drawQr($('qr'), qr)
      $('qr').dataset.drawn = String(Date.now())
    }
    drawnQr = qr
    $('qr-exhausted').hidden = !view.qrExhausted
    $('code-box').hidden = !view.code
    $('code').textContent = view.code ? `${view.code.slice(0, 4)}-${view.code.slice(4)}` : ''
    $('phone-form').hidden = Boolean(view.code) || state !== 'awaitingPairing'
  }
  if (linked) renderChats()
}

function renderChats() {
  $('me').textContent = `Linked as ${chatName(view.me)}`
  const list = $('chat-list')
  list.replaceChildren(
    ...view.chats.map((chat) => {
      const item = document.createElement('li')
      item.dataset.jid = chat.jid
      item.classList.toggle('open', chat.jid === openChat)
      const text = document.createElement('div')
      const name = document.createElement('strong')
      name.textContent = chatName(chat.jid)
      const preview = document.createElement('div')
      preview.className = 'preview'
      preview.textContent = chat.last ? (chat.last.text ?? '(not a text message)') : ''
      text.append(name, preview)
      item.append(text)
      if (chat.unread && chat.jid !== openChat) {
        const badge = document.createElement('span')
        badge.className = 'unread'
        badge.textContent = String(chat.unread)
        item.append(badge)
      }
      item.addEventListener('click', () => showChat(chat.jid))
      return item
    }),
  )
  $('no-chats').hidden = view.chats.length > 0
  $('chat').hidden = openChat === null
}

function messageItem(message) {
  const item = document.createElement('li')
  item.dataset.id = message.id
  item.classList.toggle('mine', Boolean(message.fromMe))
  item.textContent = message.text ?? '(not a text message)'
  return item
}

async function showChat(jid) {
  openChat = jid
  $('chat-title').textContent = chatName(jid)
  const { messages } = await ask(OFFSCREEN, { type: 'chat', jid })
  $('messages').replaceChildren(...messages.map(messageItem))
  $('messages').scrollTop = $('messages').scrollHeight
  view.chats = view.chats.map((chat) => (chat.jid === jid ? { ...chat, unread: 0 } : chat))
  render()
}

/** Runs an action, showing its error instead of throwing. */
const act = (action) => async (event) => {
  event?.preventDefault()
  showError(null)
  try {
    await action()
  } catch (error) {
    showError(error)
  }
}

$('phone-form').addEventListener('submit', act(async () => {
  const { code } = await ask(OFFSCREEN, { type: 'pairWithCode', phone: $('phone').value })
  view.code = code
  render()
}))
$('reply-form').addEventListener('submit', act(async () => {
  const text = $('reply').value
  if (!text || openChat === null) return
  await ask(OFFSCREEN, { type: 'send', chat: openChat, text })
  $('reply').value = ''
}))
$('logout').addEventListener('click', act(() => ask(OFFSCREEN, { type: 'logout' })))
$('link-again').addEventListener('click', act(() => ask(OFFSCREEN, { type: 'connect' })))
$('new-qr').addEventListener('click', act(() => ask(OFFSCREEN, { type: 'connect' })))

chrome.runtime.onMessage.addListener((message) => {
  if (message?.to !== POPUP) return false
  if (message.type === 'view') {
    view = message.view
    if (view.me === null) openChat = null
    render()
    if (openChat === null && view.me && view.chats.length > 0) showChat(view.chats[0].jid).catch(showError)
  } else if (message.type === 'message' && message.chat === openChat && view) {
    if (!document.querySelector(`#messages li[data-id="${CSS.escape(message.message.id)}"]`)) {
      $('messages').append(messageItem(message.message))
      $('messages').scrollTop = $('messages').scrollHeight
    }
  }
  return false
})

act(async () => {
  await ask(WORKER, { type: 'open' })
  view = (await ask(OFFSCREEN, { type: 'view' })).view
  render()
  if (view.chats.length > 0 && view.me) await showChat(view.chats[0].jid)
})()
