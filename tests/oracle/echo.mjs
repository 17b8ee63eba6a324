// The smallest oracle: proves the RPC harness itself works.
import { serve, hex, unhex } from './rpc.mjs'

serve({
  reverse: ({ data }) => hex(Buffer.from(unhex(data)).reverse()),
  fail: () => { throw new Error('asked to fail') },
})
