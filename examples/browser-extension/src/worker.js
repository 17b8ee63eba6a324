// The service worker: a thin router. The walink client lives in the offscreen document (see
// offscreen.js for why); the worker keeps it there, installs the rule that gives the client's
// socket WhatsApp Web's Origin header, and comes back on an alarm. Chromium stops this worker
// after 30 s without events, and it starts it again for the next one (a popup message, the alarm,
// the browser starting), so nothing here lives in memory and every listener is registered at the
// top level, synchronously (no top-level await: a worker with one never starts).
import { OFFSCREEN, WORKER } from './messages.js'

/** The alarm that brings the worker back to check on the client. */
export const WAKE_ALARM = 'walink-wake'
/** How often (minutes; Chromium's floor for packed extensions is 0.5). */
const WAKE_PERIOD_MINUTES = 1
/** The declarativeNetRequest session rule that sets the socket's Origin header. */
const ORIGIN_RULE_ID = 1

let creating = null

/** Creates the offscreen document unless it exists; resolves once its script has run. */
async function ensureOffscreen() {
  if (await chrome.offscreen.hasDocument()) return
  creating ??= chrome.offscreen
    .createDocument({
      url: 'offscreen.html',
      reasons: [chrome.offscreen.Reason.WORKERS],
      justification: 'Runs the WhatsApp Web client (WebAssembly) and its WebSocket while no popup is open.',
    })
    .finally(() => (creating = null))
  await creating
}

/** Sockets to `url` (from the offscreen document, not from tabs) carry `Origin: origin`. */
async function installOriginRule({ url, origin }) {
  await chrome.declarativeNetRequest.updateSessionRules({
    removeRuleIds: [ORIGIN_RULE_ID],
    addRules: [
      {
        id: ORIGIN_RULE_ID,
        action: { type: 'modifyHeaders', requestHeaders: [{ header: 'origin', operation: 'set', value: origin }] },
        condition: { urlFilter: `|${url}`, resourceTypes: ['websocket'], tabIds: [chrome.tabs.TAB_ID_NONE] },
      },
    ],
  })
  return {}
}

/** Makes sure the periodic alarm exists (a one-off alarm of the same name is replaced). */
async function ensureAlarm() {
  const alarm = await chrome.alarms.get(WAKE_ALARM)
  if (!alarm?.periodInMinutes) {
    await chrome.alarms.create(WAKE_ALARM, { delayInMinutes: WAKE_PERIOD_MINUTES, periodInMinutes: WAKE_PERIOD_MINUTES })
  }
}

/** The client runs: the offscreen document exists, and a client resting after a drop reconnects. */
async function wake() {
  await ensureOffscreen()
  return chrome.runtime.sendMessage({ to: OFFSCREEN, type: 'wake' })
}

const requests = {
  // The popup opened: the client must be running before it asks it anything.
  open: async () => {
    await ensureOffscreen()
    return {}
  },
  originRule: installOriginRule,
}

chrome.runtime.onMessage.addListener((message, _sender, sendResponse) => {
  if (message?.to !== WORKER) return false
  const handler = requests[message.type]
  if (!handler) return false
  handler(message).then(sendResponse, (error) => sendResponse({ error: { code: 'failed', message: String(error?.message ?? error) } }))
  return true
})

const report = (what) => (error) => console.error(`walink worker: ${what} failed`, error)

chrome.alarms.onAlarm.addListener((alarm) => {
  if (alarm.name !== WAKE_ALARM) return
  ensureAlarm().catch(report('the alarm'))
  wake().catch(report('waking the client'))
})
// Every launch (a loaded unpacked extension gets onInstalled with reason 'install' on each
// launch, so it never means "forget the session") and every browser start.
chrome.runtime.onInstalled.addListener(() => wake().catch(report('starting the client')))
chrome.runtime.onStartup.addListener(() => wake().catch(report('starting the client')))
ensureAlarm().catch(report('the alarm'))
