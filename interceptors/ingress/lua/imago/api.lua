-- The data plane's own control endpoint, on a unix socket in the run
-- directory (only the control plane, the same user, can reach it), and the
-- health endpoint for load balancers.
--
-- The control plane keeps the semantics (switcher.ts): it reads the record,
-- computes the next one, and stores it here with a compare-and-set on the
-- version, optionally conditioned on zero requests in flight (a switch).
local shm = require 'imago.shm'
local state = require 'imago.state'
local D = shm.D
local now_ms = shm.now_ms
local json = shm.json

local M = {}

local function reply(status, body, ctype)
  ngx.status = status
  ngx.header['Content-Type'] = ctype or 'application/json'
  ngx.print(type(body) == 'string' and body or json(body))
end

local function orphaned()
  local until_ms = D:get('orphans_until') or 0
  return until_ms > now_ms() and (D:get('orphans') or 0) or 0
end

local function workers() return shm.cfg.workers end

local function counts()
  return state.in_flight(workers()), D:get('heldtotal') or 0
end

local function record_reply()
  local inflight, held = counts()
  return { version = D:get('ver'), record = D:get('state'), inFlight = inflight, heldCount = held, orphaned = orphaned() }
end

local function put(args)
  local expect = tonumber(args.expect)
  ngx.req.read_body()
  local raw = ngx.req.get_body_data()
  if not expect or not raw or raw == '' then return reply(400, { error = 'put needs ?expect=<version> and the record as the body' }) end
  local notes = args.note
  if type(notes) == 'string' then notes = { notes } end
  local out = shm.locked(true, function()
    local ver = D:get('ver')
    if ver ~= expect then return { ok = false, reason = 'version', version = ver } end
    if args.drained == '1' then
      -- The switch: held is stored (a previous put) and nothing is in flight now.
      local n = state.in_flight(workers()) + orphaned()
      if n > 0 then return { ok = false, reason = 'inflight', inFlight = n, version = ver } end
    end
    local held = D:get('heldtotal') or 0
    local inflight = state.in_flight(workers())
    D:set('state', raw)
    D:set('ver', ver + 1)
    for _, n in ipairs(notes or {}) do
      local what, detail = n:match('^([^\t]*)\t(.*)$')
      if what then
        detail = detail:gsub('%%HELD%%', tostring(held)):gsub('%%INFLIGHT%%', tostring(inflight))
        shm.note(what, detail)
      end
    end
    return { ok = true, version = ver + 1, heldCount = held, inFlight = inflight }
  end)
  return reply(200, out)
end

local function drained(args)
  local wait = math.min(tonumber(args.waitMs) or 0, 60000)
  local deadline = now_ms() + wait
  local n
  while true do
    n = state.in_flight(workers()) + orphaned()
    if n == 0 or now_ms() >= deadline then break end
    ngx.sleep(0.001)
  end
  local st = state.get()
  return reply(200, { drained = n == 0, held = st.held, inFlight = n, heldCount = D:get('heldtotal') or 0, target = st.target })
end

local function status()
  local inflight, held = counts()
  local counters = {}
  for _, k in ipairs(shm.COUNTERS) do counters[k] = D:get('c:' .. k) or 0 end
  counters.served = D:get('seq') or 0
  local hist, hsum, requests = {}, 0, 0
  for i = 1, 16 do hist[i] = 0 end
  for w = 0, workers() - 1 do
    local h = shm.stats(w).head
    requests = requests + h[0]
    hsum = hsum + h[17]
    for i = 1, 16 do hist[i] = hist[i] + h[i] end
  end
  counters.requests = requests
  local trs = {}
  local n = D:get('trn') or 0
  for i = math.max(1, n - 49), n do
    local v = D:get('tr:' .. (i % 200))
    if v then
      local at, what, detail = v:match('^([^\t]*)\t([^\t]*)\t(.*)$')
      trs[#trs + 1] = { at = tonumber(at), what = what, detail = detail }
    end
  end
  local ws = {}
  for w = 0, workers() - 1 do
    ws[#ws + 1] = { id = w, pid = D:get('pid:' .. w) or 0, inFlight = D:get('inflight:' .. w) or 0, held = D:get('heldn:' .. w) or 0 }
  end
  return reply(200, {
    version = D:get('ver'), record = D:get('state'), inFlight = inflight, heldCount = held, orphaned = orphaned(),
    counters = counters, latency = { counts = shm.array(hist), sumMs = hsum },
    transitions = shm.array(trs), workers = shm.array(ws), stopping = D:get('stopping') == true,
  })
end

local function fmt(x) return string.format('%.3f', x) end

--- Served records as text lines: first "next lost", then "seq upstream start end status".
local function served(args)
  local since = math.max(0, tonumber(args.since) or 0)
  local limit = math.min(math.max(1, tonumber(args.limit) or 10000), 50000)
  local size = shm.ring_size
  local RSEQ, RSTART, RSTOP, RSTATUS, RUP = shm.ring_seq, shm.ring_start, shm.ring_stop, shm.ring_status, shm.ring_up
  local cur = D:get('seq') or 0
  local oldest = math.max(0, cur - size)
  local lost = math.max(0, oldest - since)
  local names = state.get().names
  local out = {}
  local next_seq = since
  local s = math.max(since, oldest) + 1
  local waited = 0
  while s <= cur and #out < limit do
    local i = s % size
    local got = RSEQ[i]
    if got == s then
      out[#out + 1] = s .. ' ' .. (names[RUP[i]] or '?') .. ' ' .. fmt(RSTART[i]) .. ' ' .. fmt(RSTOP[i]) .. ' ' .. RSTATUS[i]
      next_seq = s
      s = s + 1
    elseif got > s then
      lost = lost + 1 -- overwritten while we read (the ring wrapped)
      next_seq = s
      s = s + 1
    elseif waited < 5 then
      -- Being written by another worker right now: give it a moment.
      waited = waited + 1
      ngx.sleep(0.001)
    else
      -- Its writer died between taking the number and writing the record.
      lost = lost + 1
      next_seq = s
      s = s + 1
      waited = 0
    end
  end
  return reply(200, next_seq .. ' ' .. lost .. '\n' .. table.concat(out, '\n'), 'text/plain')
end

local function floor_div(ms) return math.floor(ms / 100) end

local function timeline(args)
  local now = floor_div(now_ms())
  local from = math.max(floor_div(tonumber(args.since) or 0), now - shm.TIMELINE_BUCKETS + 1)
  local out = {}
  local all = {}
  for w = 0, workers() - 1 do all[w + 1] = shm.stats(w) end
  for key = from, now do
    local c, sum, max, errors = 0, 0, 0, 0
    local i = key % shm.TIMELINE_BUCKETS
    for _, s in ipairs(all) do
      if s.tl_key[i] == key then
        c, sum, errors = c + s.tl_count[i], sum + s.tl_sum[i], errors + s.tl_err[i]
        if s.tl_max[i] > max then max = s.tl_max[i] end
      end
    end
    if c > 0 then out[#out + 1] = shm.array({ key * 100, c, sum, max, errors }) end
  end
  return reply(200, shm.array(out))
end

function M.handle()
  local uri = ngx.var.uri
  local method = ngx.req.get_method()
  local args = ngx.req.get_uri_args(0)
  if method == 'GET' and uri == '/record' then return reply(200, record_reply()) end
  if method == 'POST' and uri == '/put' then return put(args) end
  if method == 'GET' and uri == '/drained' then return drained(args) end
  if method == 'GET' and uri == '/status' then return status() end
  if method == 'GET' and uri == '/served' then return served(args) end
  if method == 'GET' and uri == '/timeline' then return timeline(args) end
  if method == 'POST' and uri == '/stopping' then
    D:set('stopping', true)
    return reply(200, { ok = true })
  end
  return reply(404, { error = 'no internal call ' .. method .. ' ' .. uri })
end

--- For load balancers: 200 while this interceptor serves, 503 once it is stopping.
function M.health()
  if D:get('stopping') then return reply(503, { status = 'stopping' }) end
  return reply(200, { status = 'ok' })
end

return M
