// Groups through walink's group commands: create, metadata, list, participants (add, remove,
// promote, demote), subject, description, settings, invite code (get, revoke, join), leave; and
// the `group` notifications as `group.updated` events. Native routes under
// /instances/{name}/groups and Evolution's `group/*` routes; Evolution's GROUPS_UPSERT,
// GROUP_UPDATE and GROUP_PARTICIPANTS_UPDATE webhooks. Every route answers after the server did.
import { ApiError } from '../errors.js'
import { toJid } from '../gateway.js'
import { S } from '../http/schema.js'
import { base64, sendText } from './messages.js'
import { pictureJpeg, setPicture } from './social.js'

const groupJid = { type: 'string', minLength: 6, maxLength: 128, pattern: '^[0-9-]+@g\\.us$' }
const subject = { type: 'string', minLength: 1, maxLength: 100 }
const description = { type: 'string', maxLength: 2048 }
const members = { type: 'array', minItems: 1, maxItems: 256, items: S.recipient }
const ACTIONS = ['add', 'remove', 'promote', 'demote']
const inviteCode = { type: 'string', minLength: 1, maxLength: 128, pattern: '^(https://chat\\.whatsapp\\.com/)?[0-9A-Za-z]+$' }

/** WhatsApp's status code for each participant result (Baileys' `status` strings are these). */
const RESULT_STATUS = { ok: 200, notAuthorized: 401, inviteRequired: 403, notFound: 404, recentlyLeft: 408, alreadyMember: 409, groupFull: 419 }

/** The group command's answer, its error typed. */
async function groupCommand(ctx, row, command) {
  return ctx.gateway.connected(row).command(command)
}

/** Baileys' GroupMetadata (Evolution answers and GROUPS_UPSERT carry it), from walink's GroupInfo. */
export function evolutionGroup(info, { participants = true } = {}) {
  return {
    id: info.jid,
    subject: info.subject,
    subjectOwner: info.subjectOwner ?? null,
    subjectTime: info.subjectTime,
    pictureUrl: null,
    size: info.size,
    creation: info.creation,
    owner: info.owner ?? null,
    desc: info.description ?? null,
    descId: info.descriptionId ?? null,
    restrict: info.locked,
    announce: info.announce,
    joinApprovalMode: info.approvalRequired,
    memberAddMode: info.membersCanAdd,
    ephemeralDuration: info.ephemeralSeconds || undefined,
    addressingMode: info.addressingMode,
    ...(participants ? { participants: info.participants.map(evolutionParticipant) } : {}),
  }
}

const evolutionParticipant = (p) => ({ id: p.jid, ...(p.phoneNumber ? { phoneNumber: p.phoneNumber } : {}), ...(p.lid ? { lid: p.lid } : {}), admin: p.role === 'member' ? null : p.role })

/** One participant result in Baileys' shape (`status` as a string code). */
const evolutionResult = (r) => ({ status: String(r.code ?? RESULT_STATUS[r.status] ?? 500), jid: r.jid, ...(r.inviteCode ? { content: { inviteCode: r.inviteCode, inviteExpiration: r.inviteExpiration } } : {}) })

const jids = (numbers) => numbers.map(toJid)
const inviteUrl = (code) => `https://chat.whatsapp.com/${code}`

/** Creates the group, then sets its description when one is given. */
async function create(ctx, row, { subject: name, participants, description: text }) {
  const output = await groupCommand(ctx, row, { type: 'createGroup', subject: name, participants: jids(participants) })
  if (text) {
    await groupCommand(ctx, row, { type: 'setGroupDescription', group: output.info.jid, description: text })
    output.info = (await groupCommand(ctx, row, { type: 'groupInfo', group: output.info.jid })).info
  }
  return output
}

const nameParam = { name: S.name }
const groupParams = { name: S.name, group: groupJid }

/** A native route on one group. */
const onGroup = (method, suffix, summary, body, handler) => ({
  method,
  path: `/instances/{name}/groups/{group}${suffix}`,
  auth: 'instance',
  tag: 'groups',
  params: groupParams,
  ...(body ? { body } : {}),
  summary,
  handler: async (ctx) => handler(ctx, await ctx.instance(), ctx.params.group),
})

const routes = [
  {
    method: 'POST',
    path: '/instances/{name}/groups',
    auth: 'instance',
    tag: 'groups',
    params: nameParam,
    body: { type: 'object', additionalProperties: false, required: ['subject', 'participants'], properties: { subject, participants: members, description } },
    summary: 'Create a group (participants: numbers or JIDs); answers the group and each participant\'s result.',
    handler: async (ctx) => {
      const output = await create(ctx, await ctx.instance(), ctx.body)
      return { status: 201, body: { group: output.info, participants: output.participants } }
    },
  },
  {
    method: 'GET',
    path: '/instances/{name}/groups',
    auth: 'instance',
    tag: 'groups',
    params: nameParam,
    summary: 'The groups this account is in, with their metadata.',
    handler: async (ctx) => ({ body: { groups: (await groupCommand(ctx, await ctx.instance(), { type: 'listGroups' })).groups } }),
  },
  {
    method: 'POST',
    path: '/instances/{name}/groups/join',
    auth: 'instance',
    tag: 'groups',
    params: nameParam,
    body: { type: 'object', additionalProperties: false, required: ['code'], properties: { code: inviteCode } },
    summary: 'Join a group by invite code or link (`pendingApproval` when an admin must approve).',
    handler: async (ctx) => {
      const output = await groupCommand(ctx, await ctx.instance(), { type: 'joinGroup', code: ctx.body.code })
      return { body: { group: output.group, pendingApproval: output.pendingApproval } }
    },
  },
  onGroup('GET', '', "The group's metadata (from the server).", null, async (ctx, row, group) => ({ body: (await groupCommand(ctx, row, { type: 'groupInfo', group })).info })),
  onGroup(
    'POST',
    '/participants',
    'Add, remove, promote or demote participants (admins only); a result per participant.',
    { type: 'object', additionalProperties: false, required: ['action', 'participants'], properties: { action: { type: 'string', enum: ACTIONS }, participants: members } },
    async (ctx, row, group) => ({ body: { results: (await groupCommand(ctx, row, { type: 'changeGroupParticipants', group, action: ctx.body.action, participants: jids(ctx.body.participants) })).results } }),
  ),
  onGroup('PUT', '/subject', 'Change the subject.', { type: 'object', additionalProperties: false, required: ['subject'], properties: { subject } }, async (ctx, row, group) => {
    await groupCommand(ctx, row, { type: 'setGroupSubject', group, subject: ctx.body.subject })
    return { body: { group, subject: ctx.body.subject } }
  }),
  onGroup('PUT', '/description', 'Change the description (null or empty deletes it).', { type: 'object', additionalProperties: false, required: ['description'], properties: { description: { type: ['string', 'null'], maxLength: 2048 } } }, async (ctx, row, group) => {
    await groupCommand(ctx, row, { type: 'setGroupDescription', group, description: ctx.body.description || null })
    return { body: { group, description: ctx.body.description || null } }
  }),
  onGroup(
    'PUT',
    '/settings',
    'Change a setting: `announce` (only admins send), `locked` (only admins edit the info), `approvalRequired` (joining needs an admin), `membersCanAdd` (every member may add; else admins only) (booleans), `ephemeral` (seconds, 0 off).',
    {
      type: 'object',
      additionalProperties: false,
      required: ['setting', 'value'],
      properties: { setting: { type: 'string', enum: ['announce', 'locked', 'approvalRequired', 'membersCanAdd', 'ephemeral'] }, value: { type: ['boolean', 'integer'], minimum: 0, maximum: 31_536_000 } },
    },
    async (ctx, row, group) => {
      const { setting, value } = ctx.body
      if ((setting === 'ephemeral') !== (typeof value === 'number')) throw new ApiError(400, 'invalid_request', setting === 'ephemeral' ? 'ephemeral takes seconds (an integer)' : `${setting} takes a boolean`)
      await groupCommand(ctx, row, { type: 'setGroupSetting', group, setting, value })
      return { body: { group, setting, value } }
    },
  ),
  onGroup('GET', '/invite', 'The invite code and link (admins only).', null, async (ctx, row, group) => {
    const { code } = await groupCommand(ctx, row, { type: 'groupInviteCode', group })
    return { body: { code, url: inviteUrl(code) } }
  }),
  onGroup('DELETE', '/invite', 'Revoke the invite code; answers the new one (admins only).', null, async (ctx, row, group) => {
    const { code } = await groupCommand(ctx, row, { type: 'revokeGroupInvite', group })
    return { body: { code, url: inviteUrl(code) } }
  }),
  onGroup('PUT', '/picture', "Set the group's picture: `picture` a JPEG as base64 or an http(s) URL (anything else: 400 `invalid_picture`).", { type: 'object', additionalProperties: false, required: ['picture'], properties: { picture: base64 } }, async (ctx, row, group) => {
    const id = await setPicture(ctx, row, group, await pictureJpeg(ctx, row, ctx.body.picture, 'picture'))
    return { body: { group, pictureId: id } }
  }),
  onGroup('DELETE', '/picture', "Remove the group's picture.", null, async (ctx, row, group) => {
    await setPicture(ctx, row, group, null)
    return { body: { group, pictureId: null } }
  }),
  onGroup('GET', '/requests', 'The requests to join waiting for an admin (admins only; groups with `approvalRequired`).', null, async (ctx, row, group) => ({
    body: { requests: (await groupCommand(ctx, row, { type: 'groupJoinRequests', group })).requests },
  })),
  onGroup(
    'POST',
    '/requests',
    'Approve or reject requests to join (admins only); a result per requester (`notFound`: it asked nothing).',
    { type: 'object', additionalProperties: false, required: ['action', 'participants'], properties: { action: { type: 'string', enum: ['approve', 'reject'] }, participants: members } },
    async (ctx, row, group) => ({ body: { results: (await groupCommand(ctx, row, { type: 'resolveGroupJoinRequests', group, approve: ctx.body.action === 'approve', participants: jids(ctx.body.participants) })).results } }),
  ),
  onGroup(
    'POST',
    '/invite/accept',
    'Accept a group invite message (V4: sent when an add was refused with `inviteRequired`): its `code`, `expiration` (Unix seconds) and `inviter` (the chat it came in).',
    { type: 'object', additionalProperties: false, required: ['code', 'expiration', 'inviter'], properties: { code: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[0-9A-Za-z+/=_-]+$' }, expiration: { type: 'integer', minimum: 0, maximum: 4_102_444_800 }, inviter: S.recipient } },
    async (ctx, row, group) => {
      const output = await groupCommand(ctx, row, { type: 'acceptGroupInvite', group, code: ctx.body.code, expiration: ctx.body.expiration, inviter: toJid(ctx.body.inviter) })
      return { body: { group: output.group, pendingApproval: output.pendingApproval } }
    },
  ),
  onGroup('DELETE', '', 'Leave the group.', null, async (ctx, row, group) => {
    await groupCommand(ctx, row, { type: 'leaveGroup', group })
    return { body: { group, left: true } }
  }),
]

const evoName = { instanceName: S.name }
const byGroup = { type: 'object', required: ['groupJid'], properties: { groupJid } }

/** An Evolution `group/*` route (the group in `?groupJid=` unless `query` says otherwise). */
const evolution = (method, name, summary, { query = byGroup, body, status = 200 } = {}, handler) => ({
  method,
  path: `/group/${name}/{instanceName}`,
  auth: 'instance',
  format: 'evolution',
  tag: 'evolution',
  params: evoName,
  ...(query ? { query } : {}),
  ...(body ? { body } : {}),
  summary: `Evolution: ${summary}`,
  handler: async (ctx) => ({ status, body: await handler(ctx, await ctx.instance(ctx.params.instanceName), ctx.query.groupJid) }),
})

/** Evolution's updateSetting actions: the walink setting and value. */
const EVOLUTION_SETTINGS = { announcement: ['announce', true], not_announcement: ['announce', false], locked: ['locked', true], unlocked: ['locked', false] }

const evolutionRoutes = [
  evolution('POST', 'create', 'create a group (`participants` as numbers); answers its metadata.', { query: null, status: 201, body: { type: 'object', required: ['subject', 'participants'], properties: { subject, description, participants: members } } }, async (ctx, row) => {
    const output = await create(ctx, row, ctx.body)
    return evolutionGroup(output.info)
  }),
  evolution('POST', 'updateGroupSubject', 'change the subject.', { status: 201, body: { type: 'object', required: ['subject'], properties: { subject } } }, async (ctx, row, group) => {
    await groupCommand(ctx, row, { type: 'setGroupSubject', group, subject: ctx.body.subject })
    return { update: 'success' }
  }),
  evolution('POST', 'updateGroupPicture', "change the group's picture (`image`: a JPEG as URL or base64).", { status: 201, body: { type: 'object', required: ['image'], properties: { image: base64 } } }, async (ctx, row, group) => {
    await setPicture(ctx, row, group, await pictureJpeg(ctx, row, ctx.body.image, 'image'))
    return { update: 'success' }
  }),
  evolution('POST', 'updateGroupDescription', 'change the description.', { status: 201, body: { type: 'object', required: ['description'], properties: { description } } }, async (ctx, row, group) => {
    await groupCommand(ctx, row, { type: 'setGroupDescription', group, description: ctx.body.description || null })
    return { update: 'success' }
  }),
  evolution('POST', 'updateParticipant', 'add, remove, promote or demote participants.', { status: 201, body: { type: 'object', required: ['action', 'participants'], properties: { action: { type: 'string', enum: ACTIONS }, participants: members } } }, async (ctx, row, group) => {
    const { results } = await groupCommand(ctx, row, { type: 'changeGroupParticipants', group, action: ctx.body.action, participants: jids(ctx.body.participants) })
    return { updateParticipants: results.map(evolutionResult) }
  }),
  evolution('POST', 'updateSetting', 'announcement / not_announcement / locked / unlocked.', { status: 201, body: { type: 'object', required: ['action'], properties: { action: { type: 'string', enum: Object.keys(EVOLUTION_SETTINGS) } } } }, async (ctx, row, group) => {
    const [setting, value] = EVOLUTION_SETTINGS[ctx.body.action]
    await groupCommand(ctx, row, { type: 'setGroupSetting', group, setting, value })
    return { updateSetting: true }
  }),
  evolution('POST', 'toggleEphemeral', 'disappearing messages (`expiration` seconds: 0, 86400, 604800, 7776000).', { status: 201, body: { type: 'object', required: ['expiration'], properties: { expiration: { type: 'integer', enum: [0, 86400, 604800, 7776000] } } } }, async (ctx, row, group) => {
    await groupCommand(ctx, row, { type: 'setGroupSetting', group, setting: 'ephemeral', value: ctx.body.expiration })
    return { success: true }
  }),
  evolution('GET', 'inviteCode', 'the invite code and link.', {}, async (ctx, row, group) => {
    const { code } = await groupCommand(ctx, row, { type: 'groupInviteCode', group })
    return { inviteUrl: inviteUrl(code), inviteCode: code }
  }),
  evolution('POST', 'revokeInviteCode', 'revoke the invite code; answers the new one.', { status: 201 }, async (ctx, row, group) => {
    const { code } = await groupCommand(ctx, row, { type: 'revokeGroupInvite', group })
    return { revoked: true, inviteCode: code }
  }),
  evolution(
    'POST',
    'sendInvite',
    'send the invite link as a text (`description`, a blank line, the link) to each of `numbers`.',
    { query: null, body: { type: 'object', required: ['groupJid', 'numbers'], properties: { groupJid, description: { type: 'string', maxLength: 1024 }, numbers: members } } },
    async (ctx, row) => {
      const { code } = await groupCommand(ctx, row, { type: 'groupInviteCode', group: ctx.body.groupJid })
      const url = inviteUrl(code)
      const text = `${ctx.body.description ?? ''}\n\n${url}`
      for (const number of ctx.body.numbers) await sendText(ctx, row, number, text)
      return { send: true, inviteUrl: url }
    },
  ),
  evolution('GET', 'acceptInviteCode', 'join by invite code (`?inviteCode=`).', { query: { type: 'object', required: ['inviteCode'], properties: { inviteCode } } }, async (ctx, row) => {
    const output = await groupCommand(ctx, row, { type: 'joinGroup', code: ctx.query.inviteCode })
    return { accepted: true, groupJid: output.group, pendingApproval: output.pendingApproval }
  }),
  evolution('GET', 'findGroupInfos', "a group's metadata.", {}, async (ctx, row, group) => evolutionGroup((await groupCommand(ctx, row, { type: 'groupInfo', group })).info)),
  evolution('GET', 'fetchAllGroups', 'every group of this account (`?getParticipants=true` with the members).', { query: { type: 'object', required: ['getParticipants'], properties: { getParticipants: { type: 'string', enum: ['true', 'false'] } } } }, async (ctx, row) => {
    const { groups } = await groupCommand(ctx, row, { type: 'listGroups' })
    return groups.map((info) => evolutionGroup(info, { participants: ctx.query.getParticipants === 'true' }))
  }),
  evolution('GET', 'participants', "a group's participants.", {}, async (ctx, row, group) => ({ participants: (await groupCommand(ctx, row, { type: 'groupInfo', group })).info.participants.map(evolutionParticipant) })),
  evolution('DELETE', 'leaveGroup', 'leave a group.', {}, async (ctx, row, group) => {
    await groupCommand(ctx, row, { type: 'leaveGroup', group })
    return { groupJid: group, leave: true }
  }),
]

/** Baileys' participant actions for walink's participant changes. */
const PARTICIPANT_ACTION = { added: 'add', removed: 'remove', left: 'remove', promoted: 'promote', demoted: 'demote' }

/** The GROUP_UPDATE fields of a change (Baileys' names). */
function groupUpdate(change) {
  switch (change.kind) {
    case 'subject':
      return { subject: change.subject }
    case 'description':
      return { desc: change.text ?? null, descId: change.id ?? null }
    case 'announce':
      return { announce: change.on }
    case 'locked':
      return { restrict: change.on }
    case 'approvalRequired':
      return { joinApprovalMode: change.on }
    case 'membersCanAdd':
      return { memberAddMode: change.on }
    case 'ephemeral':
      return { ephemeralDuration: change.seconds }
    case 'inviteCode':
      return { inviteCode: change.code }
    case 'deleted':
      return { deleted: true }
    default:
      return {}
  }
}

export default {
  name: 'groups',
  routes: [...routes, ...evolutionRoutes],
  clientEvents: {
    /** One `group.updated` per change of a `w:gp2` notification. */
    async group(runtime, event, gw, q) {
      for (const change of event.changes) await gw.emit(q, runtime.id, 'group.updated', { group: event.group, actor: event.actor ?? null, timestamp: event.timestamp, change })
    },
  },
  evolutionEvents: {
    'group.updated': (data, instance) => {
      const { change } = data
      if (change.kind === 'created') return [['GROUPS_UPSERT', [{ ...evolutionGroup(change.info), author: data.actor, instanceId: instance.id }]]]
      if (change.kind === 'participants') return [['GROUP_PARTICIPANTS_UPDATE', { id: data.group, author: data.actor, participants: change.participants.map((p) => p.jid), action: PARTICIPANT_ACTION[change.change] ?? change.change, instanceId: instance.id }]]
      return [['GROUP_UPDATE', [{ id: data.group, author: data.actor, ...groupUpdate(change), instanceId: instance.id }]]]
    },
  },
}
