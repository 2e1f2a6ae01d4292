-- The hot path: what every worker does for each request.
--
--   access:  count the request in flight, THEN read the record; if held,
--            step back and wait in the hold queue (queue.lua);
--   balancer: the upstream chosen at admission (set_current_peer);
--   log:     the served record (seq, upstream, start, end, status), THEN the
--            in-flight count goes down; counters and latency.
--
-- The order of those shared-dict operations is the atomicity argument across
-- workers (docs/ingress.md): a switch needs `held` stored and then an
-- in-flight sum of zero; a request counts itself in flight before it reads
-- `held`, so either the switch sees it in flight, or it sees `held` and waits.
local shm = require 'imago.shm'
local state = require 'imago.state'
local queue = require 'imago.queue'
local balancer = require 'ngx.balancer'
local ffi = require 'ffi'
local base_get_request = require('resty.core.base').get_request
local cast = ffi.cast
local tonumber = tonumber
--- The current request as a table key (the pointer as a number: get_request
--  may return a fresh cdata object on each call).
local function get_request() return tonumber(cast('uintptr_t', base_get_request())) end
local D = shm.D
local now_ms = shm.now_ms
local floor = math.floor

local M = {}

-- Per-request entries, keyed by the request itself: unlike ngx.ctx they
-- survive the internal redirects of error_page, so the log phase always finds
-- what the access phase counted.
local R = {}
local INF
-- This worker's figures (shm.lua): WH[0] requests, WH[1..16] histogram, WH[17] latency sum; the timeline arrays.
local WH, TK, TC, TS, TM, TE
local RSEQ, RSTART, RSTOP, RSTATUS, RUP, RSIZE
local pending_ships = 0

function M.init_worker(wid)
  INF = 'inflight:' .. wid
  local s = shm.stats(wid)
  WH, TK, TC, TS, TM, TE = s.head, s.tl_key, s.tl_count, s.tl_sum, s.tl_max, s.tl_err
  RSEQ, RSTART, RSTOP, RSTATUS, RUP, RSIZE = shm.ring_seq, shm.ring_start, shm.ring_stop, shm.ring_status, shm.ring_up, shm.ring_size
end

local function json_reply(status, message, headers)
  ngx.status = status
  ngx.header['Content-Type'] = 'application/json'
  if headers then for k, v in pairs(headers) do ngx.header[k] = v end end
  ngx.print(shm.json({ error = message }))
  return ngx.exit(status)
end

--- Headers named in the client's Connection header describe that connection only (RFC 9110 §7.6.1).
local function drop_connection_tokens()
  local c = ngx.var.http_connection
  if c and c ~= 'keep-alive' and c ~= 'close' then
    for t in c:gmatch('[^,%s]+') do
      local k = t:lower()
      if k ~= 'keep-alive' and k ~= 'close' then ngx.req.clear_header(t) end
    end
  end
end

--- Exactly `percent`% of eligible requests (safe method, no body), in arrival order;
--  with a write shadow set, exactly `writePercent`% of the writes (their own credit).
--  Only called while mirroring is on: nothing here runs on the hot path otherwise.
local function sampled(st)
  local method = ngx.req.get_method()
  if st.m_methods[method] then
    local cl = ngx.var.http_content_length
    if (cl and cl ~= '0') or ngx.var.http_transfer_encoding then return false end
    local pct = st.m_pct
    local credit = D:incr('mcredit', pct, 0)
    return floor(credit / 100) > floor((credit - pct) / 100)
  end
  if st.m_wshadow and st.m_wmethods[method] then
    local pct = st.m_wpct
    local credit = D:incr('mwcredit', pct, 0)
    return floor(credit / 100) > floor((credit - pct) / 100)
  end
  return false
end

local function admitted(e, st)
  local up = st.up
  e.adm = true
  e.up = up.idx
  e.upname = up.name
  e.ip = up.ip
  e.port = up.port
  if e.mirror then
    -- The shadow as it is now; mirroring stops for a request admitted after it went off.
    -- A write's shadow is the write shadow (the sandbox): never the read shadow, never the target.
    local method = ngx.req.get_method()
    local name, write = nil, false
    if st.m_methods[method] then name = st.m_shadow elseif st.m_wmethods[method] then name, write = st.m_wshadow, true end
    local sh = st.m_on and name and st.ups[name]
    if sh and sh.name ~= up.name and not (write and name == st.m_shadow) then
      e.sip, e.sport, e.write = sh.ip, sh.port, write
    end
  end
end

local function admit(r, mirrored)
  -- Every field at once: one allocation, no rehash as they are filled in.
  local e = { mirror = mirrored, adm = false, up = 0, upname = false, ip = false, port = 0, start = false, q = false, abort_cb = false, sip = false, sport = false, failed = false, write = false }
  R[r] = e
  WH[0] = WH[0] + 1
  while true do
    D:incr(INF, 1, 0)
    local st = state.get() -- read after counting ourselves in flight (see the top of this file)
    if not st.held then return admitted(e, st) end
    D:incr(INF, -1, 0)
    local q, why = queue.enter()
    if why == 'full' then
      shm.count('holdOverflow')
      return json_reply(503, 'hold queue full (' .. shm.cfg.holdQueueSize .. ')', { ['Retry-After'] = '1' })
    end
    if q then
      if not e.abort_cb then
        e.abort_cb = true
        ngx.on_abort(function()
          if e.q and queue.cancel(e.q) then return ngx.exit(499) end
        end)
      end
      e.q = q
      queue.wait(q)
      D:incr(INF, 1, 0)
      local st2 = state.get()
      if not st2.held then return admitted(e, st2) end
      -- Held again (a new hold) before we left: wait again.
      D:incr(INF, -1, 0)
    end
  end
end

function M.access()
  drop_connection_tokens()
  local st = state.get()
  if st.m_on and sampled(st) then return ngx.exec('@imago_mirror') end
  return admit(get_request(), false)
end

function M.access_mirrored()
  return admit(get_request(), true)
end

function M.balance()
  local e = R[get_request()]
  -- A second call is nginx retrying after a cached (keep-alive) connection
  -- failed before any reply byte (the keep-alive race); POST/PATCH are retried
  -- only when the request was not sent (proxy_next_upstream default).
  if e.start then shm.count('upstreamRetries') else e.start = now_ms() end
  local ok, err = balancer.set_current_peer(e.ip, e.port)
  if not ok then
    ngx.log(ngx.ERR, 'imago: set_current_peer(', e.ip, ', ', e.port, '): ', err)
    return ngx.exit(ngx.ERROR)
  end
end

--- Headers named in the upstream's Connection header are not passed on either.
function M.header_filter()
  local c = ngx.var.upstream_http_connection
  if c then
    for t in c:gmatch('[^,%s]+') do
      local k = t:lower()
      if k ~= 'keep-alive' and k ~= 'close' then ngx.header[t] = nil end
    end
  end
end

function M.header_filter_mirrored()
  M.header_filter()
  local e = R[get_request()]
  if e then
    e.status = ngx.status
    e.rh = ngx.resp.get_headers(0, true)
    e.chunks = {}
    e.size = 0
  end
end

function M.body_filter_mirrored()
  local e = R[get_request()]
  if not e or not e.chunks then return end
  local c = ngx.arg[1]
  if c and #c > 0 then
    e.size = e.size + #c
    if e.size > shm.cfg.maxCaptureBytes then
      e.chunks = nil
      e.truncated = true
      return
    end
    e.chunks[#e.chunks + 1] = c
  end
end

--- The reply nginx makes when the upstream cannot be reached (error_page).
function M.upstream_failed(status)
  local e = R[get_request()]
  if e then e.failed = true end
  ngx.status = status
  ngx.header['Content-Type'] = 'application/json'
  ngx.header['Connection'] = 'close'
  ngx.print(shm.json({ error = "upstream '" .. ((e and e.upname) or '?') .. "' failed" }))
end

local LAT = { 0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000 }
local NB = shm.TIMELINE_BUCKETS

local function latency(ms, t, err)
  local b = 1
  while b <= 15 and ms > LAT[b] do b = b + 1 end
  WH[b] = WH[b] + 1
  WH[17] = WH[17] + ms
  local key = floor(t / 100)
  local i = key % NB
  if TK[i] ~= key then
    TK[i], TC[i], TS[i], TM[i], TE[i] = key, 0, 0, 0, 0
  end
  TC[i] = TC[i] + 1
  TS[i] = TS[i] + ms
  if ms > TM[i] then TM[i] = ms end
  if err then TE[i] = TE[i] + 1 end
end

local function classify(status)
  if status == 400 then shm.count('badRequests')
  elseif status == 408 then shm.count('timeouts')
  elseif status == 413 or status == 431 or status == 494 then shm.count('tooLarge') end
end

local function send_frame(premature, frame)
  if not premature then
    local sock = ngx.socket.tcp()
    sock:settimeouts(1000, 5000, 1000)
    local ok = sock:connect('unix:' .. shm.cfg.mirrorSink)
    if ok then ok = sock:send(frame) end
    if ok then sock:setkeepalive(30000, 16) else sock:close() shm.count('shadowDropped') end
  end
  pending_ships = pending_ships - 1
end

--- Hands (request, primary reply) to the control plane, which sends the shadow copy and pairs the replies.
local function ship(e, t, status)
  if pending_ships >= shm.cfg.maxPendingShips then return shm.count('shadowDropped') end
  local qh = {}
  for k, v in pairs(ngx.req.get_headers(0, true)) do
    if type(v) == 'table' then for _, x in ipairs(v) do qh[#qh + 1] = k .. ':' .. x end else qh[#qh + 1] = k .. ':' .. v end
  end
  local rh = {}
  for k, v in pairs(e.rh or {}) do
    if type(v) == 'table' then for _, x in ipairs(v) do rh[#rh + 1] = k .. ':' .. x end else rh[#rh + 1] = k .. ':' .. v end
  end
  local err = ''
  if e.failed then err = 'upstream unreachable'
  elseif e.truncated then err = 'reply larger than the capture limit'
  elseif status == 499 then err = 'reply cut' end
  local reqbody = ''
  if e.write then
    -- Uold could not be reached: the write did not happen there; do not make it happen in the sandbox.
    if e.failed then return end
    -- The request body nginx read before proxying (in memory up to client_body_buffer_size).
    reqbody = ngx.req.get_body_data()
    if not reqbody then
      if ngx.req.get_body_file() then return shm.count('writeBodyTooLarge') end
      reqbody = ''
    end
  end
  local meta = ngx.encode_args({
    method = ngx.req.get_method(), url = ngx.var.request_uri, ip = ngx.var.remote_addr or '',
    at = string.format('%.3f', ngx.req.start_time() * 1000), status = e.failed and 502 or (e.status or status),
    latency = string.format('%.3f', t - e.start), err = err, qh = qh, rh = rh, sip = e.sip, sport = e.sport,
    w = e.write and '1' or nil, qlen = e.write and #reqbody or nil,
  })
  local body = reqbody .. (e.chunks and table.concat(e.chunks) or '')
  pending_ships = pending_ships + 1
  local ok = ngx.timer.at(0, send_frame, 'IMAGO1 ' .. #meta .. ' ' .. #body .. '\n' .. meta .. body)
  if not ok then
    pending_ships = pending_ships - 1
    shm.count('shadowDropped')
  end
end

function M.log()
  local r = get_request()
  local e = R[r]
  local t = now_ms()
  local status = ngx.status
  if e then
    R[r] = nil
    if e.start then
      -- The record first, then out of flight: a drained interceptor has every record written.
      local seq = D:incr('seq', 1, 0)
      local i = seq % RSIZE
      RSTART[i] = e.start
      RSTOP[i] = t
      RSTATUS[i] = status
      RUP[i] = e.up
      RSEQ[i] = seq -- last: a reader trusts a slot whose seq is the one it expects
      if e.failed then shm.count('upstreamErrors') elseif status == 499 then shm.count('clientAborts') end
      if e.sip then ship(e, t, status) end
    else
      classify(status)
    end
    if e.adm then D:incr(INF, -1, 0) end
  else
    -- Never admitted: refused before the access phase (malformed, too large, timed out, upgrade).
    WH[0] = WH[0] + 1
    classify(status)
  end
  latency(t - ngx.req.start_time() * 1000, t, status >= 500)
end

return M
