-- The switch record as the workers read it.
--
-- The control plane (Node) computes every record and stores it whole with one
-- compare-and-set (api.lua); the record is a query string (the same encoding
-- on both sides). Workers read the raw string on every request (one shared
-- dict get) and decode it only when it changed.
local shm = require 'imago.shm'
local D = shm.D
local decode_args = ngx.decode_args

local M = {}

local function list(v)
  if v == nil then return {} end
  if type(v) == 'table' then return v end
  return { v }
end

local function bool(v) return v == '1' end

--- Decodes a raw record into the table the hot path uses.
function M.decode(raw)
  local a = decode_args(raw, 0)
  local st = {
    raw = raw,
    held = bool(a.held),
    target = a.target,
    origin = a.origin,
    committed = bool(a.committed),
    started = tonumber(a.started) or 0,
    deadline = tonumber(a.deadline) or 0,
    to = a.to,
    to_switch = a.to_switch,
    to_reason = a.to_reason,
    ups = {},
    names = {},
    m_on = bool(a.m_on),
    m_shadow = a.m_shadow,
    m_pct = tonumber(a.m_pct) or 100,
    m_methods = {},
    -- Writes go to their own shadow (a sandbox), never the read shadow.
    m_wshadow = a.m_wshadow,
    m_wpct = tonumber(a.m_wpct) or 100,
    m_wmethods = {},
  }
  for _, u in ipairs(list(a.up)) do
    local name, idx, ip, port, url = u:match('^(%S+) (%d+) (%S+) (%d+) (%S+)$')
    if name then
      -- set_current_peer reads an IPv6 address only in brackets.
      local peer = ip:find(':', 1, true) and ('[' .. ip .. ']') or ip
      local e = { name = name, idx = tonumber(idx), ip = peer, port = tonumber(port), url = url }
      st.ups[name] = e
      st.names[e.idx] = name
    end
  end
  for m in (a.m_methods or ''):gmatch('[^,]+') do st.m_methods[m] = true end
  if st.m_wshadow then
    for m in (a.m_wmethods or ''):gmatch('[^,]+') do st.m_wmethods[m] = true end
  end
  st.up = st.ups[st.target]
  return st
end

local cached_ver, cached
--- The current record: one shared dict get of its version (a number), the
--  record itself read and decoded again only when the version moved. Every
--  writer stores the record, then the version, under the transition lock, so
--  reading the version is the moment a worker learns of a transition.
function M.get()
  local ver = D:get('ver')
  if ver ~= cached_ver then
    local raw = D:get('state')
    cached = M.decode(raw)
    cached_ver = ver
  end
  return cached
end

--- Requests sent upstream and not finished, over every worker slot.
function M.in_flight(workers)
  local n = 0
  for w = 0, workers - 1 do n = n + (D:get('inflight:' .. w) or 0) end
  return n
end

return M
