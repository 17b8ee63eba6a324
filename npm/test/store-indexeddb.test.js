// The IndexedDB store passes the conformance suite on fake-indexeddb (an in-memory IndexedDB for
// Node); test/browser runs the same store in headless Chromium.
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb'

import { IndexedDBStore } from '../src/indexeddb-store.js'
import { storeConformance } from './support/store-conformance.js'

const indexedDB = new IDBFactory()
const openStore = (label) => IndexedDBStore.open(label, { indexedDB, IDBKeyRange })

storeConformance('IndexedDBStore (fake-indexeddb)', {
  open: openStore,
  reopen: async (store, label) => {
    await store.close()
    return openStore(label)
  },
  // Dropping the connection without close() is what a killed tab does; committed transactions stay.
  crash: async (_store, label) => openStore(label),
})
