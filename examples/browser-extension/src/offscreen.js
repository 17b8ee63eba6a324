// The offscreen document: it hosts the walink client (host.js). Chromium rewrites the Origin
// header of a WebSocket opened here (the worker's declarativeNetRequest rule), which it does not
// for a socket opened by the service worker itself, and the document is not stopped after 30 s of
// quiet as the worker is. Only chrome.runtime exists here: the worker does the rest.
import { startHost } from './host.js'
import { OFFSCREEN, POPUP, WORKER } from './messages.js'

/** Asks the worker; rejects with its error. */
async function askWorker(request) {
  const answer = await chrome.runtime.sendMessage({ ...request, to: WORKER })
  if (answer?.error) throw new Error(answer.error.message)
  return answer
}

const host = fetch(chrome.runtime.getURL('config.json'))
  .then((response) => response.json())
  .then((config) =>
    startHost({
      config,
      installOriginRule: (url, origin) => askWorker({ type: 'originRule', url, origin }),
      // Nobody listens while the popup is closed: that is fine.
      publish: (message) => chrome.runtime.sendMessage({ ...message, to: POPUP }).catch(() => {}),
    }),
  )
host.catch((error) => console.error('walink: the client did not start', error))

chrome.runtime.onMessage.addListener((message, _sender, sendResponse) => {
  if (message?.to !== OFFSCREEN) return false
  host.then(
    (ready) => ready.handle(message).then(sendResponse),
    (error) => sendResponse({ error: { code: 'not_started', message: String(error?.message ?? error) } }),
  )
  return true
})
