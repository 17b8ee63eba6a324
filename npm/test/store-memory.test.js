// The in-memory store passes the conformance suite (it is not durable: no reopen or crash).
import { MemoryStore } from '../src/store.js'
import { storeConformance } from './support/store-conformance.js'

storeConformance('MemoryStore', { open: async () => new MemoryStore() })
