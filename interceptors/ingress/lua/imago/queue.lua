-- The hold queue and the per-worker poller.
--
-- A request that arrives while the record says `held` waits in its worker's
-- queue (entered under the transition lock, so a release, also under it,
-- counts exactly the requests held before it). After the release each
-- worker's poller lets its queue go, in arrival order, all at once; the
-- workers notice the release within a millisecond of each other.
--
-- The poller (one light loop per worker) also enforces the hard timeout of
-- a hold: any worker that sees the deadline passed applies the timeout record
-- the control plane stored with the hold, so the timeout fires even when the
-- control plane, or the worker that took the hold call, is gone.
local shm = require 'imago.shm'
local state = require 'imago.state'
local semaphore = require 'ngx.semaphore'
local D = shm.D
local now_ms = shm.now_ms

local M = {}

local Q, qh, qt = {}, 1, 0 -- this worker's waiting requests, in arrival order
local heldn_key, master

function M.init_worker(wid, master_pid)
  heldn_key = 'heldn:' .. wid
  master = master_pid
end

--- Enters the queue; returns the entry, or nil and 'released' / 'full'.
function M.enter()
  return shm.locked(true, function()
    -- Under the lock: a release (also under it) counts exactly the requests queued before it.
    if not state.get().held then return nil, 'released' end
    if (D:get('heldtotal') or 0) >= shm.cfg.holdQueueSize then return nil, 'full' end
    D:incr('heldtotal', 1, 0)
    D:incr(heldn_key, 1, 0)
    shm.count('held')
    local e = { sema = semaphore.new(0) }
    qt = qt + 1
    Q[qt] = e
    return e
  end)
end

--- Blocks the request until the poller lets it go (cancel ends it elsewhere).
function M.wait(e)
  while not e.posted do e.sema:wait(1) end
end

--- The client went away while held: the request is never sent anywhere.
function M.cancel(e)
  if e.posted or e.cancelled then return false end
  e.cancelled = true
  shm.locked(true, function()
    D:incr('heldtotal', -1, 0)
    D:incr(heldn_key, -1, 0)
    shm.count('heldDisconnected')
  end)
  return true
end

--- Lets this worker's queue go, in arrival order, once the record is no longer held.
local function pump()
  if qh > qt or state.get().held then return end
  while qh <= qt do
    local e = Q[qh]
    Q[qh] = nil
    qh = qh + 1
    if not e.cancelled then
      e.posted = true
      D:incr('heldtotal', -1, 0)
      D:incr(heldn_key, -1, 0)
      -- Semaphore posts resume the waiting requests in the order they are posted.
      e.sema:post(1)
    end
  end
end

--- Applies the hold's timeout record when its deadline has passed.
local function check_deadline()
  local st = state.get()
  if not st.held or st.deadline == 0 or not st.to then return end
  local now = now_ms()
  if now < st.deadline then return end
  shm.locked(true, function()
    if D:get('state') ~= st.raw then return end -- a transition won the race
    local held = D:get('heldtotal') or 0
    D:set('state', st.to)
    D:incr('ver', 1, 0)
    shm.count('autoReleases')
    if st.to_switch and st.to_switch ~= '' then shm.note('switch', st.to_switch) end
    local target = state.decode(st.to).target
    shm.note('release', string.format('%s: %d held request(s) to %s after %d ms', st.to_reason or 'hold timeout', held, target, now - st.started))
  end)
end

local SIGQUIT = 3
local quitting = false
--- The data plane lives no longer than the processes above it. PR_SET_PDEATHSIG
--  (main.lua) covers the usual case; this covers a parent that died before
--  its child could ask for it: a worker whose master is gone quits, and a
--  worker that finds the control process gone asks the master to quit (both
--  gracefully: held requests still leave at their hard timeout).
local function check_parents()
  if quitting then return end
  if shm.parent() ~= master then
    quitting = true
    ngx.log(ngx.WARN, 'imago: the nginx master is gone; this worker quits')
    shm.signal(ngx.worker.pid(), SIGQUIT)
  elseif shm.cfg.controlPid and not shm.alive(shm.cfg.controlPid) then
    quitting = true
    ngx.log(ngx.WARN, 'imago: the control process ', shm.cfg.controlPid, ' is gone; the data plane quits')
    shm.signal(master, SIGQUIT)
  end
end

function M.run(premature)
  if premature then return end
  local n = 0
  while true do
    n = n + 1
    local ok, err = pcall(function()
      check_deadline()
      pump()
      if n % 20 == 0 then check_parents() end
    end)
    if not ok then ngx.log(ngx.ERR, 'imago poller: ', err) end
    if ngx.worker.exiting() and qh > qt then return end
    ngx.sleep(state.get().held and 0.001 or 0.005)
  end
end

return M
