// The chats the popup shows: the last messages of each chat and who this device is, in an
// IndexedDB database of their own (walink's store holds keys, not messages). Bounded: at most
// MAX_CHATS chats of MAX_MESSAGES_PER_CHAT messages of MAX_TEXT_CHARS characters each.

/** The most chats kept; the one with the oldest last message goes first. */
export const MAX_CHATS = 100
/** The most messages kept per chat; the oldest go first. */
export const MAX_MESSAGES_PER_CHAT = 100
/** The longest text kept, in UTF-16 units; longer texts are cut. */
export const MAX_TEXT_CHARS = 4096

const CHATS = 'chats'
const META = 'meta'

/** One IndexedDB transaction's request as a promise. */
function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result)
    request.onerror = () => reject(request.error)
  })
}

/** The user part of a JID (`15550001111:3@s.whatsapp.net` -> `15550001111`). */
export function userOf(jid) {
  return String(jid ?? '').split('@')[0].split(':')[0]
}

/** The chats and the account, in one database. */
export class History {
  #db

  static async open(name) {
    const request = indexedDB.open(name, 1)
    request.onupgradeneeded = () => {
      request.result.createObjectStore(CHATS, { keyPath: 'jid' })
      request.result.createObjectStore(META)
    }
    return new History(await done(request))
  }

  constructor(db) {
    this.#db = db
  }

  #store(name, mode) {
    return this.#db.transaction(name, mode).objectStore(name)
  }

  /** The JID of this device's account, or null. */
  async me() {
    return (await done(this.#store(META, 'readonly').get('me'))) ?? null
  }

  async setMe(jid) {
    await done(this.#store(META, 'readwrite').put(jid, 'me'))
  }

  /** Every chat without its messages, the latest first: `{ jid, last, unread }`. */
  async chats() {
    const all = await done(this.#store(CHATS, 'readonly').getAll())
    return all.map(summary).sort((a, b) => (b.last?.timestamp ?? 0) - (a.last?.timestamp ?? 0))
  }

  /** One chat's messages, oldest first. */
  async messages(jid) {
    return (await done(this.#store(CHATS, 'readonly').get(jid)))?.messages ?? []
  }

  /**
   * Adds a message (`{ id, fromMe, sender, text, timestamp }`, timestamp in seconds) to its chat,
   * once per id; resolves with false when the chat already had it.
   */
  async add(jid, message, { unread = !message.fromMe } = {}) {
    const kept = { ...message, text: message.text === undefined ? undefined : String(message.text).slice(0, MAX_TEXT_CHARS) }
    const tx = this.#db.transaction(CHATS, 'readwrite')
    const chats = tx.objectStore(CHATS)
    const chat = (await done(chats.get(jid))) ?? { jid, messages: [], unread: 0 }
    if (chat.messages.some((m) => m.id === kept.id)) return false
    chat.messages.push(kept)
    chat.messages.sort((a, b) => a.timestamp - b.timestamp)
    chat.messages.splice(0, Math.max(0, chat.messages.length - MAX_MESSAGES_PER_CHAT))
    if (unread) chat.unread += 1
    chats.put(chat)
    await new Promise((resolve, reject) => {
      tx.oncomplete = resolve
      tx.onerror = () => reject(tx.error)
    })
    await this.#trim()
    return true
  }

  /** Marks a chat read. */
  async read(jid) {
    const tx = this.#db.transaction(CHATS, 'readwrite')
    const chats = tx.objectStore(CHATS)
    const chat = await done(chats.get(jid))
    if (chat && chat.unread) {
      chat.unread = 0
      chats.put(chat)
    }
  }

  /** Forgets every chat and the account (after a logout). */
  async clear() {
    const tx = this.#db.transaction([CHATS, META], 'readwrite')
    tx.objectStore(CHATS).clear()
    tx.objectStore(META).clear()
    await new Promise((resolve, reject) => {
      tx.oncomplete = resolve
      tx.onerror = () => reject(tx.error)
    })
  }

  /** Drops the chats beyond MAX_CHATS, the ones with the oldest last message first. */
  async #trim() {
    const chats = await this.chats()
    if (chats.length <= MAX_CHATS) return
    const store = this.#store(CHATS, 'readwrite')
    for (const chat of chats.slice(MAX_CHATS)) store.delete(chat.jid)
  }
}

function summary(chat) {
  return { jid: chat.jid, last: chat.messages.at(-1) ?? null, unread: chat.unread }
}
