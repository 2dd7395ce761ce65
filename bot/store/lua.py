"""The Lua scripts that make the Redis store's operations atomic (see :mod:`bot.store.redis`).

Ticket scripts take ``ARGV[1]``, the ``<prefix>:{q}:`` part every desk key starts
with, and build the queue and agent-index names from it (the tier and the assignee
are only known once the ticket is read). They answer ``{error}`` or ``{error,
ticket_json}``, ``error`` being ``''`` on success or a ``ChangeError`` value.

The escalated queue score is computed in Lua (the priority is only known there) and
formatted with ``%.0f``: an exact integer string, whatever Lua's number printing.
Scores stay below 2**53, so doubles hold them exactly (see ``queue_score``).
Ticket numbers pass through cjson, which prints 14 significant digits: fine for
numbers from ``INCR``.

``open_by_conversation`` (conversation id -> its open ticket id) is written by every
script that opens, moves or closes a ticket, in the same step: it is what the engine
trusts to know whether a human owns a conversation (issue 3: a router killed between
opening a ticket and saving the conversation leaves nothing unowned).
"""

from __future__ import annotations

_DESK = """
local Q = ARGV[1]
local TICKETS = Q .. 'tickets'
local NUMBERS = Q .. 'numbers'
local SCORES = Q .. 'scores'
local OPEN = Q .. 'open_by_conversation'
local RESOLVED = Q .. 'resolved'
local function queue_key(tier) return Q .. 'queue:' .. tier end
local function agent_key(agent) return Q .. 'agent:' .. agent end
local function member(t) return string.format('%016d', t.number) .. ':' .. t.id end
local function load(id)
  local raw = redis.call('HGET', TICKETS, id)
  if not raw then return nil, nil end
  return cjson.decode(raw), raw
end
local function save(t)
  local raw = cjson.encode(t)
  redis.call('HSET', TICKETS, t.id, raw)
  return raw
end
local function is_null(v) return v == nil or v == cjson.null end
-- the conversation's open ticket is t (t is queued or assigned)
local function mark_open(t) redis.call('HSET', OPEN, t.conversation_id, t.id) end
-- t is no longer open: forget it, unless the conversation has another one since
local function mark_closed(t)
  if redis.call('HGET', OPEN, t.conversation_id) == t.id then
    redis.call('HDEL', OPEN, t.conversation_id)
  end
end
local function at_capacity(agent, max_open)
  return max_open ~= '' and redis.call('SCARD', agent_key(agent)) >= tonumber(max_open)
end
local function assign(t, agent)
  redis.call('ZREM', queue_key(t.tier), member(t))
  t.state = 'assigned'
  t.assignee = agent
  t.offered_to = cjson.null
  redis.call('SADD', agent_key(agent), t.id)
  -- who has been idle longest (automatic assignment): a sequence, not a clock
  redis.call('HSET', Q .. 'last_assigned', agent, redis.call('INCR', Q .. 'assign_seq'))
  mark_open(t)
  return save(t)
end
local function list(v) if type(v) == 'table' then return v end return {} end
local function has(items, x)
  for _, item in ipairs(list(items)) do if item == x then return true end end
  return false
end
-- back in its queue, same place and stay; the owner is not offered it again
local function requeue(t)
  redis.call('SREM', agent_key(t.assignee), t.id)
  if not has(t.offers, t.assignee) then
    t.offers = list(t.offers)
    t.offers[#t.offers + 1] = t.assignee
  end
  t.state = 'queued'
  t.assignee = cjson.null
  t.offered_to = cjson.null
  redis.call('ZADD', queue_key(t.tier), redis.call('HGET', SCORES, t.id), member(t))
end
-- queued in another tier from now on: a new stay (its own promises and offers).
-- now_iso, now_us (µs since the queue epoch), top priority, priority span
local function move_to_tier(t, tier, now_iso, now_us, top, span)
  if t.state == 'queued' then
    redis.call('ZREM', queue_key(t.tier), member(t))
  else
    redis.call('SREM', agent_key(t.assignee), t.id)
  end
  local score = string.format('%.0f', (tonumber(top) - t.priority) * tonumber(span) + tonumber(now_us))
  -- A reply counted before this move belongs to the stay that ends here, even when its
  -- time (read by another process before its round trip) is not before now: dated back
  -- to that stay's start, it never passes for the new tier's first response (issue 11).
  -- ISO 8601 times of one format and offset compare as strings.
  if not is_null(t.replied_at) and t.replied_at >= now_iso then t.replied_at = t.queued_at end
  t.tier_history = list(t.tier_history)
  t.tier_history[#t.tier_history + 1] = tier
  t.tier = tier
  t.state = 'queued'
  t.assignee = cjson.null
  t.queued_at = now_iso
  t.offered_to = cjson.null
  t.offers = {}
  redis.call('HSET', SCORES, t.id, score)
  redis.call('ZADD', queue_key(t.tier), score, member(t))
  mark_open(t)
end
-- the assigned ticket owned by agent, or an error reply
local function owned(id, agent)
  local t, raw = load(id)
  if not t then return nil, {'not_found'} end
  if t.state ~= 'assigned' then return nil, {'not_open', raw} end
  if t.assignee ~= agent then return nil, {'not_assignee', raw} end
  return t, nil
end
"""

# KEYS: tickets, numbers, scores, open_by_conversation, queue(tier).
# ARGV: desk, ticket json, queue score.
OPEN_TICKET = """
local t = cjson.decode(ARGV[2])
local old = load(t.id)
if old then
  -- a re-opened id: drop it from wherever the old version was
  redis.call('ZREM', queue_key(old.tier), member(old))
  if not is_null(old.assignee) then redis.call('SREM', agent_key(old.assignee), old.id) end
  redis.call('HDEL', NUMBERS, string.format('%d', old.number))
  mark_closed(old)
end
redis.call('HSET', TICKETS, t.id, ARGV[2])
redis.call('HSET', NUMBERS, string.format('%d', t.number), t.id)
redis.call('HSET', SCORES, t.id, ARGV[3])
redis.call('ZADD', queue_key(t.tier), ARGV[3], member(t))
mark_open(t)
return 1
"""

# KEYS: tickets, open_by_conversation. ARGV: desk, conversation id.
# The open ticket's JSON, or nil.
OPEN_TICKET_OF = """
local id = redis.call('HGET', OPEN, ARGV[2])
if not id then return false end
local t, raw = load(id)
if not t or (t.state ~= 'queued' and t.state ~= 'assigned') then return false end
return raw
"""

# KEYS: tickets, numbers, scores, agent.
# ARGV: desk, ticket id, agent, max_open or '', then the tiers the agent works (none: any).
# The tier is checked here, at claim time (issue 11): an escalation that lands between
# the agent's look at the ticket and the claim leaves it to the new tier's agents.
CLAIM = """
local t, raw = load(ARGV[2])
if not t then return {'not_found'} end
if t.state == 'assigned' then return {'already_claimed', raw} end
if t.state ~= 'queued' then return {'not_queued', raw} end
if #ARGV > 4 then
  local works = false
  for i = 5, #ARGV do if ARGV[i] == t.tier then works = true end end
  if not works then return {'not_in_tier', raw} end
end
if at_capacity(ARGV[3], ARGV[4]) then return {'at_capacity', raw} end
return {'', assign(t, ARGV[3])}
"""

# KEYS: tickets, numbers, scores, open, agent, queue(tier)...
# ARGV: desk, agent, max_open or '', use skills ('1'/'0'), agent skills joined by
# newlines, scan limit, number of tiers n, tier 1..n, strict flag ('1'/'0') 1..n.
# Best = fits the agent's skills first, then lowest score (priority, age), then member.
TAKE_NEXT = """
local agent = ARGV[2]
local use_skills = ARGV[4] == '1'
local skills = {}
for skill in string.gmatch(ARGV[5], '[^\\n]+') do skills[skill] = true end
local limit, n = tonumber(ARGV[6]), tonumber(ARGV[7])
local best_member, best_rank, best_score
for i = 1, n do
  local strict = ARGV[7 + n + i] == '1'
  local head = redis.call('ZRANGE', queue_key(ARGV[7 + i]), 0, limit - 1, 'WITHSCORES')
  for j = 1, #head, 2 do
    local m, score = head[j], tonumber(head[j + 1])
    local t = load(string.sub(m, 18))
    if t and (is_null(t.offered_to) or t.offered_to == agent) then
      local fits = true
      if use_skills then
        for _, skill in ipairs(list(t.skills)) do
          if not skills[skill] then fits = false end
        end
      end
      if fits or not strict then
        local rank = fits and 0 or 1
        if not best_member or rank < best_rank
            or (rank == best_rank and (score < best_score
                or (score == best_score and m < best_member))) then
          best_member, best_rank, best_score = m, rank, score
        end
        if fits then break end  -- the rest of this queue comes after it
      end
    end
  end
end
if not best_member then return {'not_found'} end
local t, raw = load(string.sub(best_member, 18))
if at_capacity(agent, ARGV[3]) then return {'at_capacity', raw} end
return {'', assign(t, agent)}
"""

# KEYS: tickets, numbers, scores, queue(to_tier).
# ARGV: desk, ticket id, to_tier, now (ISO), now (µs since the queue epoch), top priority,
# span, and optionally the tier and assignee ('' for none) the caller saw (issue 11).
ESCALATE = """
local t, raw = load(ARGV[2])
if not t then return {'not_found'} end
if t.state ~= 'queued' and t.state ~= 'assigned' then return {'not_open', raw} end
if ARGV[8] then
  if t.tier ~= ARGV[8] then return {'not_in_tier', raw} end
  local assignee = is_null(t.assignee) and '' or t.assignee
  if assignee ~= ARGV[9] then return {'already_claimed', raw} end
end
if t.tier == ARGV[3] then return {'same_tier', raw} end
move_to_tier(t, ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
return {'', save(t)}
"""

# KEYS: tickets, numbers, scores, agent. ARGV: desk, ticket id, agent.
RELEASE = """
local t, refused = owned(ARGV[2], ARGV[3])
if not t then return refused end
requeue(t)  -- the score kept from when it entered the queue: same priority, same age
local raw = save(t)
mark_open(t)
return {'', raw}
"""

# KEYS: tickets, numbers, scores, agent. ARGV: desk, ticket id, agent, now (ISO), now (µs).
RESOLVE = """
local t, refused = owned(ARGV[2], ARGV[3])
if not t then return refused end
redis.call('SREM', agent_key(ARGV[3]), t.id)
redis.call('HDEL', SCORES, t.id)
t.state = 'resolved'
t.resolved_at = ARGV[4]
mark_closed(t)
redis.call('ZADD', RESOLVED, ARGV[5], t.id)  -- for prune_tickets, oldest first
return {'', save(t)}
"""

# KEYS: tickets, numbers, scores, resolved. ARGV: desk, ticket id, now (ISO), now (µs).
CLOSE_BY_CUSTOMER = """
local t, raw = load(ARGV[2])
if not t then return {'not_found'} end
if t.state ~= 'queued' and t.state ~= 'assigned' then return {'not_open', raw} end
if t.state == 'queued' then
  redis.call('ZREM', queue_key(t.tier), member(t))
else
  redis.call('SREM', agent_key(t.assignee), t.id)
end
redis.call('HDEL', SCORES, t.id)
t.state = 'closed'
t.resolved_at = ARGV[3]
mark_closed(t)
redis.call('ZADD', RESOLVED, ARGV[4], t.id)  -- for prune_tickets, oldest first
return {'', save(t)}
"""

# KEYS: tickets, numbers, scores. ARGV: desk, ticket id, now (ISO), agent or '', tier or ''.
# With an agent and tier: only while the ticket is still assigned to that agent in that
# tier (issue 11: an owner's reply racing their escalation is counted in the old tier
# or refused, never as the new tier's first response).
MARK_FIRST_RESPONSE = """
local t, raw = load(ARGV[2])
if not t then return {'not_found'} end
if ARGV[4] and ARGV[4] ~= '' and (t.state ~= 'assigned' or t.assignee ~= ARGV[4]) then
  return {'not_assignee', raw}
end
if ARGV[5] and ARGV[5] ~= '' and t.tier ~= ARGV[5] then return {'not_in_tier', raw} end
if is_null(t.first_response_at) then t.first_response_at = ARGV[3] end
t.replied_at = ARGV[3]
return {'', save(t)}
"""

# KEYS: tickets, numbers, scores, open.
# ARGV: desk, ticket id, mark, promise, tier, queued_at (ISO, as stored), replied_at as
# the caller saw it ('' none), action, now (ISO), now (µs, queue epoch), top priority,
# span, to_tier ('' none). {error, after, before}: see DeskStore.breach_step.
BREACH_STEP = """
local t, raw = load(ARGV[2])
if not t then return {'not_found'} end
if has(t.breaches, ARGV[3]) then return {'done_already', raw} end
if (t.state ~= 'queued' and t.state ~= 'assigned') or t.tier ~= ARGV[5]
    or t.queued_at ~= ARGV[6] then
  return {'not_breached', raw}
end
if ARGV[4] == 'first_response' then
  local replied = is_null(t.replied_at) and '' or t.replied_at
  if replied ~= ARGV[7] then return {'not_breached', raw} end
end
local action = ARGV[8]
if action == 'raise_priority' then
  local top = tonumber(ARGV[11])
  if t.priority < top then
    t.priority = t.priority + 1
    local score = string.format('%.0f', tonumber(redis.call('HGET', SCORES, t.id)) - tonumber(ARGV[12]))
    redis.call('HSET', SCORES, t.id, score)
    if t.state == 'queued' then redis.call('ZADD', queue_key(t.tier), score, member(t)) end
  end
elseif action == 'reassign' then
  if t.state == 'assigned' then requeue(t) end
elseif action == 'escalate' then
  if ARGV[13] == '' or ARGV[13] == t.tier then return {'same_tier', raw} end
  move_to_tier(t, ARGV[13], ARGV[9], ARGV[10], ARGV[11], ARGV[12])
end
t.breaches = list(t.breaches)
t.breaches[#t.breaches + 1] = ARGV[3]
return {'', save(t), raw}
"""

# KEYS: tickets, numbers, scores, open.
# ARGV: desk, ticket id, tier ('' same), priority ('' same), skills JSON ('' same),
# private ('1'/'0'/'' same), now (ISO), now (µs), top priority, span.
ROUTE = """
local t, raw = load(ARGV[2])
if not t then return {'not_found'} end
if t.state ~= 'queued' then return {'not_queued', raw} end
if ARGV[5] ~= '' then t.skills = cjson.decode(ARGV[5]) end
if ARGV[6] ~= '' then t.private = ARGV[6] == '1' end
if ARGV[4] ~= '' and tonumber(ARGV[4]) ~= t.priority then
  local delta = tonumber(ARGV[4]) - t.priority
  t.priority = tonumber(ARGV[4])
  local score = string.format('%.0f', tonumber(redis.call('HGET', SCORES, t.id)) - delta * tonumber(ARGV[10]))
  redis.call('HSET', SCORES, t.id, score)
  redis.call('ZADD', queue_key(t.tier), score, member(t))
end
if ARGV[3] ~= '' and ARGV[3] ~= t.tier then
  move_to_tier(t, ARGV[3], ARGV[7], ARGV[8], ARGV[9], ARGV[10])
end
return {'', save(t), raw}
"""

# KEYS: tickets, numbers, scores, open.
# ARGV: desk, ticket id, queued_at (ISO, as stored), current offer ('' none), to ('' none).
MOVE_OFFER = """
local t, raw = load(ARGV[2])
if not t then return {'not_found'} end
if t.state ~= 'queued' or t.queued_at ~= ARGV[3] then return {'stale', raw} end
local current = is_null(t.offered_to) and '' or t.offered_to
if current ~= ARGV[4] then return {'stale', raw} end
if ARGV[5] == '' then
  t.offered_to = cjson.null
else
  t.offered_to = ARGV[5]
  if not has(t.offers, ARGV[5]) then
    t.offers = list(t.offers)
    t.offers[#t.offers + 1] = ARGV[5]
  end
end
return {'', save(t), raw}
"""

# KEYS: tickets, numbers, scores. ARGV: desk, ticket id, score.
RECORD_CSAT = """
local t, raw = load(ARGV[2])
if not t then return {'not_found'} end
if t.state ~= 'resolved' then return {'not_open', raw} end
t.csat = tonumber(ARGV[3])
t.state = 'closed'
mark_closed(t)
return {'', save(t)}
"""

# KEYS: tickets, queue(tier). ARGV: desk, tier. One snapshot of the queue, in order.
QUEUE = """
local members = redis.call('ZRANGE', KEYS[2], 0, -1)
local out = {}
for i, m in ipairs(members) do
  out[i] = redis.call('HGET', KEYS[1], string.sub(m, 18))
end
return out
"""

# KEYS: tickets, agent.
ASSIGNED = """
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  out[#out + 1] = redis.call('HGET', KEYS[1], id)
end
return out
"""

# KEYS: lock, fence. ARGV: ttl ms. The new token, or nil when the lock is held.
TRY_LOCK = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token, 'PX', ARGV[1])
return token
"""

# KEYS: lock. ARGV: token.
UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

# KEYS: lock, conversation. ARGV: token, conversation json. 1 saved, 0 lock lost.
SAVE_CONVERSATION = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
return 1
"""

# KEYS: messages (hot), archive, bytes.
# ARGV: message json, hot cap, archive cap, its id's JSON key-value, how far back to
# look, max bytes (0: none). Needs Redis >= 6.2 (LPOP count).
APPEND_MESSAGE = """
-- ARGV[4]: '"id":' .. the id as JSON, which starts the record; ARGV[5]: how far back
for _, raw in ipairs(redis.call('LRANGE', KEYS[1], -tonumber(ARGV[5]), -1)) do
  if string.find(raw, ARGV[4], 1, true) == 2 then return 0 end  -- written already
end
append_line(KEYS[1], KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[6]))
return 1
"""

# KEYS: messages (hot), archive. ARGV: limit, or '' for every message kept.
# Archive then hot, oldest first, read in one step.
TRANSCRIPT = """
local limit = tonumber(ARGV[1])
local hot = redis.call('LRANGE', KEYS[1], limit and -limit or 0, -1)
if limit and #hot >= limit then return hot end
local out = redis.call('LRANGE', KEYS[2], limit and -(limit - #hot) or 0, -1)
for _, raw in ipairs(hot) do out[#out + 1] = raw end
return out
"""

# KEYS: tickets, numbers, scores, resolved. ARGV: desk, cutoff (µs since 1970), limit.
# The ids of the resolved tickets pruned, oldest first.
PRUNE_TICKETS = """
local ids = redis.call('ZRANGE', RESOLVED, '-inf', '(' .. ARGV[2], 'BYSCORE', 'LIMIT', 0, ARGV[3])
for _, id in ipairs(ids) do
  local t = load(id)
  if t and (t.state == 'resolved' or t.state == 'closed') then
    if redis.call('HGET', NUMBERS, string.format('%d', t.number)) == id then
      redis.call('HDEL', NUMBERS, string.format('%d', t.number))
    end
    redis.call('HDEL', TICKETS, id)
    redis.call('HDEL', SCORES, id)
    if not is_null(t.opened_by) then redis.call('HDEL', Q .. 'opened_by', t.opened_by) end
  end
  redis.call('ZREM', RESOLVED, id)
end
return ids
"""

# KEYS: timers. ARGV: now (µs since 1970), limit, lease until (µs) or '' to remove.
POP_DUE = """
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[2])
for _, id in ipairs(due) do
  if ARGV[3] == '' then
    redis.call('ZREM', KEYS[1], id)
  else
    redis.call('ZADD', KEYS[1], 'XX', ARGV[3], id)
  end
end
return due
"""

# KEYS: timers. ARGV: timer id, the due time (µs) it must still have. 1 when removed.
CANCEL_TIMER = """
local at = redis.call('ZSCORE', KEYS[1], ARGV[1])
if at and tonumber(at) == tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
"""

# A fixed-window counter: the window starts at the first hit (PEXPIRE once).
HIT = """
local hits = redis.call('INCR', KEYS[1])
if hits == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return hits
"""

#: Publish a content version if the live one is still ARGV[1] (compare-and-set, issue 16).
#: KEYS: live number, meta hash, files hash. Answers {1, new number} or {0, live number}.
PUBLISH_CONTENT = """
local live = tonumber(redis.call('GET', KEYS[1]) or '0')
if live ~= tonumber(ARGV[1]) then return {0, live} end
local n = live + 1
redis.call('HSET', KEYS[2], tostring(n), ARGV[2])
redis.call('HSET', KEYS[3], tostring(n), ARGV[3])
redis.call('SET', KEYS[1], n)
return {1, n}
"""


# Appending one transcript line: the hot list keeps ``hot`` lines, its overflow moves to
# the archive (which keeps ``archive_cap``; 0: dropped), and the conversation's bytes
# (a counter beside them) stay under ``max_bytes`` (0: no cap) by dropping the oldest
# lines, archive first, never the last one (issue 11: a byte bound per conversation).
_APPEND = """
local function append_line(hot_key, archive_key, bytes_key, raw, hot, archive_cap, max_bytes)
  local n = redis.call('RPUSH', hot_key, raw)
  local size = redis.call('INCRBY', bytes_key, #raw)
  if n > hot then
    local overflow = redis.call('LPOP', hot_key, n - hot)
    if archive_cap > 0 then
      for _, old in ipairs(overflow) do redis.call('RPUSH', archive_key, old) end
      local extra = redis.call('LLEN', archive_key) - archive_cap
      if extra > 0 then
        for _, gone in ipairs(redis.call('LPOP', archive_key, extra)) do
          size = redis.call('DECRBY', bytes_key, #gone)
        end
      end
    else
      for _, gone in ipairs(overflow) do size = redis.call('DECRBY', bytes_key, #gone) end
    end
  end
  while max_bytes > 0 and size > max_bytes do
    local gone = redis.call('LPOP', archive_key)
    if not gone then
      if redis.call('LLEN', hot_key) <= 1 then break end
      gone = redis.call('LPOP', hot_key)
    end
    size = redis.call('DECRBY', bytes_key, #gone)
  end
end
"""

# The turn's two steps (issue 18): each touches keys of the conversation's hash tag only.

# KEYS: lock, fence, conversation, seen, messages (hot). ARGV: lock ttl ms, recent lines.
# {'seen', conversation} | {'locked'} | {'ok', token, conversation or false, line...}
BEGIN_TURN = """
if redis.call('EXISTS', KEYS[4]) == 1 then
  return {'seen', redis.call('GET', KEYS[3])}
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {'locked'} end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token, 'PX', ARGV[1])
local out = {'ok', token, redis.call('GET', KEYS[3])}
local recent = tonumber(ARGV[2])
if recent > 0 then
  for _, raw in ipairs(redis.call('LRANGE', KEYS[5], -recent, -1)) do out[#out + 1] = raw end
end
return out
"""

# KEYS: lock, conversation, messages, archive, events, outbox, outbox lease, seen,
# bytes, fence.
# ARGV: 1 token or '' (no lock), 2 conversation json or '', 3 seen ttl ms or '',
# 4 '1' to unlock, 5 hot cap, 6 archive cap, 7 events cap, 8 recent ids to look back,
# 9 outbox token or '', 10 outbox lease ms, 11 #messages, 12 #events, 13 #items,
# 14 idle ttl ms or '' (retention), 15 max transcript bytes (0: none),
# then per message its json and how its record starts ('"id":' .. id json), then
# the events' json, then the items' json.
# {0} when the lock is lost (nothing written), else {1, outbox leased 0/1}.
COMMIT_TURN = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2]) end
local hot, archive_cap = tonumber(ARGV[5]), tonumber(ARGV[6])
local back = tonumber(ARGV[8])
local nm, ne, no = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])
local max_bytes = tonumber(ARGV[15])
local i = 16
if nm > 0 then
  local recent = redis.call('LRANGE', KEYS[3], -back, -1)
  for _ = 1, nm do
    local raw, start = ARGV[i], ARGV[i + 1]
    i = i + 2
    local written = false
    for _, r in ipairs(recent) do
      if string.find(r, start, 1, true) == 2 then written = true break end
    end
    if not written then
      recent[#recent + 1] = raw
      append_line(KEYS[3], KEYS[4], KEYS[9], raw, hot, archive_cap, max_bytes)
    end
  end
end
if ne > 0 then
  for _ = 1, ne do
    redis.call('RPUSH', KEYS[5], ARGV[i])
    i = i + 1
  end
  redis.call('LTRIM', KEYS[5], -tonumber(ARGV[7]), -1)
end
local leased = 0
if no > 0 then
  for _ = 1, no do
    redis.call('RPUSH', KEYS[6], ARGV[i])
    i = i + 1
  end
  if ARGV[9] ~= '' then
    local holder = redis.call('GET', KEYS[7])
    if not holder or holder == ARGV[9] then
      redis.call('SET', KEYS[7], ARGV[9], 'PX', ARGV[10])
      leased = 1
    end
  end
end
if ARGV[3] ~= '' then redis.call('SET', KEYS[8], 1, 'PX', ARGV[3]) end
if ARGV[4] == '1' and ARGV[1] ~= '' then redis.call('DEL', KEYS[1]) end
if ARGV[14] ~= '' then  -- retention: an idle conversation expires as a whole
  for _, k in ipairs({KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[9], KEYS[10]}) do
    redis.call('PEXPIRE', k, ARGV[14])
  end
end
return {1, leased}
"""

# A turn's events in the global log (issue 18: one command in the turn's pipeline, not
# an XADD per event and a PUBLISH): each event its own stream entry, the stream capped
# approximately as ``XADD MAXLEN ~`` does; with a channel, the events published on it
# in one message, a line each (compact JSON has no raw newline).
# KEYS: the events stream. ARGV: cap, channel ('' : do not publish), event json...
# How many events were appended.
LOG_EVENTS = """
for i = 3, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[i])
end
if ARGV[2] ~= '' and #ARGV > 2 then
  redis.call('PUBLISH', ARGV[2], table.concat(ARGV, '\\n', 3))
end
return #ARGV - 2
"""

# KEYS: outbox, outbox lease. ARGV: token, lease ms, limit.
# false while another token holds the lease, else {item json...}.
TAKE_OUTBOX = """
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return false end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
local limit = tonumber(ARGV[3])
if limit <= 0 then return {} end
return redis.call('LRANGE', KEYS[1], 0, limit - 1)
"""

# KEYS: outbox, outbox lease. ARGV: token, then how each acked item's record starts.
# How many items remain; with none, the token's lease is given back.
ACK_OUTBOX = """
for i = 2, #ARGV do
  local head = redis.call('LINDEX', KEYS[1], 0)
  if head and string.find(head, ARGV[i], 1, true) == 2 then redis.call('LPOP', KEYS[1]) end
end
local left = redis.call('LLEN', KEYS[1])
if left == 0 and redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return left
"""

# KEYS: outbox lease. ARGV: token, lease ms. 1 renewed, 0 not the holder.
RENEW_OUTBOX = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS: tickets, numbers, scores, open_by_conversation, opened_by, ticket number,
# queue(tier). ARGV: desk, ticket json (number 0: take the next), queue score,
# first ticket number. The ticket opened (now, or by an earlier call for the same
# opened_by).
OPEN_HANDOFF = """
local t = cjson.decode(ARGV[2])
if not is_null(t.opened_by) then
  local id = redis.call('HGET', KEYS[5], t.opened_by)
  if id then
    local raw = redis.call('HGET', TICKETS, id)
    if raw then return raw end
  end
end
if t.number == 0 then
  t.number = redis.call('INCR', KEYS[6]) + tonumber(ARGV[4]) - 1
end
local raw = save(t)
redis.call('HSET', NUMBERS, string.format('%d', t.number), t.id)
redis.call('HSET', SCORES, t.id, ARGV[3])
redis.call('ZADD', queue_key(t.tier), ARGV[3], member(t))
mark_open(t)
if not is_null(t.opened_by) then redis.call('HSET', KEYS[5], t.opened_by, t.id) end
return raw
"""

# KEYS: tickets, numbers, scores, open_by_conversation, opened_by, resolved.
# ARGV: desk, ticket id... Every trace of the tickets on the desk (erasure).
FORGET_TICKETS = """
for i = 2, #ARGV do
  local t = load(ARGV[i])
  if t then
    redis.call('ZREM', queue_key(t.tier), member(t))
    if not is_null(t.assignee) then redis.call('SREM', agent_key(t.assignee), t.id) end
    if redis.call('HGET', NUMBERS, string.format('%d', t.number)) == t.id then
      redis.call('HDEL', NUMBERS, string.format('%d', t.number))
    end
    mark_closed(t)
    if not is_null(t.opened_by) then redis.call('HDEL', KEYS[5], t.opened_by) end
    redis.call('HDEL', TICKETS, t.id)
  end
  redis.call('HDEL', SCORES, ARGV[i])
  redis.call('ZREM', RESOLVED, ARGV[i])
end
return 1
"""

SCRIPTS: dict[str, str] = {
    "forget_tickets": _DESK + FORGET_TICKETS,
    "begin_turn": BEGIN_TURN,
    "commit_turn": _APPEND + COMMIT_TURN,
    "log_events": LOG_EVENTS,
    "take_outbox": TAKE_OUTBOX,
    "ack_outbox": ACK_OUTBOX,
    "renew_outbox": RENEW_OUTBOX,
    "open_handoff": _DESK + OPEN_HANDOFF,
    "publish_content": PUBLISH_CONTENT,
    "hit": HIT,
    "open_ticket": _DESK + OPEN_TICKET,
    "open_ticket_of": _DESK + OPEN_TICKET_OF,
    "claim": _DESK + CLAIM,
    "take_next": _DESK + TAKE_NEXT,
    "escalate": _DESK + ESCALATE,
    "release": _DESK + RELEASE,
    "resolve": _DESK + RESOLVE,
    "close_by_customer": _DESK + CLOSE_BY_CUSTOMER,
    "mark_first_response": _DESK + MARK_FIRST_RESPONSE,
    "breach_step": _DESK + BREACH_STEP,
    "route": _DESK + ROUTE,
    "move_offer": _DESK + MOVE_OFFER,
    "record_csat": _DESK + RECORD_CSAT,
    "prune_tickets": _DESK + PRUNE_TICKETS,
    "queue": QUEUE,
    "assigned": ASSIGNED,
    "try_lock": TRY_LOCK,
    "unlock": UNLOCK,
    "save_conversation": SAVE_CONVERSATION,
    "pop_due": POP_DUE,
    "cancel_timer": CANCEL_TIMER,
    "append_message": _APPEND + APPEND_MESSAGE,
    "transcript": TRANSCRIPT,
}
