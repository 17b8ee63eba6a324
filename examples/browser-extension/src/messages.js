// Who a runtime message is for: every extension context hears every message, so each one
// carries `to` and each listener answers only its own.
export const WORKER = 'worker'
export const OFFSCREEN = 'offscreen'
export const POPUP = 'popup'
