// Typed errors: every failure the API reports has a stable `code` and an HTTP status.

export class ApiError extends Error {
  /**
   * @param {number} status the HTTP status
   * @param {string} code a stable, machine-readable code
   * @param {string} message for people
   * @param {object} [details] more fields for the caller (never a secret)
   */
  constructor(status, code, message, details) {
    super(message)
    this.status = status
    this.code = code
    this.details = details
  }
}

/** The HTTP status of each of walink's command error codes (and the driver's). */
const COMMAND_STATUS = {
  invalid_phone_number: 400,
  invalid_address: 400,
  invalid_message: 400,
  invalid_command: 400,
  unsupported_platform: 400,
  already_paired: 409,
  not_paired: 409,
  pairing_code_outstanding: 409,
  not_connected: 409,
  invalid_state: 409,
  rate_limited: 429,
  rejected: 502,
  timed_out: 504,
  app_state: 502,
  untrusted_identity: 409,
  media_invalid: 400,
  media_too_large: 413,
  upload_failed: 502,
  download_failed: 502,
  media_expired: 410,
  unknown_poll: 404,
  forbidden: 403,
  not_found: 404,
  resource_limit: 409,
  bad_request: 400,
  bad_prekey_answer: 502,
  push_name_required: 409,
  bad_answer: 502,
}

/** Turns an error of the walink package (a command's rejection) into an ApiError. */
export function fromCommandError(error) {
  if (error instanceof ApiError) return error
  const code = typeof error?.code === 'string' ? error.code : 'internal'
  const status = COMMAND_STATUS[code] ?? 500
  const detail = error?.detail ?? {}
  const details = {}
  if (detail.serverCode !== undefined) details.serverCode = detail.serverCode
  if (detail.serverText !== undefined) details.serverText = detail.serverText
  if (detail.retryAfterMs !== undefined) details.retryAfterMs = detail.retryAfterMs
  return new ApiError(status, code, error?.message ?? String(error), Object.keys(details).length ? details : undefined)
}

export const notFound = (what) => new ApiError(404, 'not_found', `${what} not found`)
export const badRequest = (message, details) => new ApiError(400, 'invalid_request', message, details)
