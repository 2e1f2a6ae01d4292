-- Start-up of the data plane: the master prepares the shared state, each
-- worker checks whether it replaces one that died and settles its accounts.
local shm = require 'imago.shm'
local D = shm.D

local M = {}

local SIGQUIT = 3

--- In the master, once per start (shared memory is new): the record the control plane restored.
function M.init_master(cfg)
  shm.cfg = cfg
  shm.map_ring(cfg.servedLogSize)
  shm.map_stats(cfg.workers)
  D:set('state', cfg.record)
  D:set('ver', 1)
  D:set('heldtotal', 0)
  D:set('seq', 0)
  for w = 0, cfg.workers - 1 do D:set('inflight:' .. w, 0) end
  shm.note('start', cfg.startNote)
  -- If the control process dies, nginx finishes what it has (a hold still
  -- ends at its hard timeout) and exits; the supervisor restarts the whole.
  shm.die_with_parent(SIGQUIT)
  IMAGO = require 'imago.proxy'
  IMAGO_API = require 'imago.api'
  require 'imago.queue'
end

--- In each worker, before it accepts connections.
function M.init_worker()
  local wid, pid = ngx.worker.id(), ngx.worker.pid()
  -- A worker whose master died quits gracefully (its listeners close at once).
  shm.die_with_parent(SIGQUIT)
  shm.locked(false, function()
    local before = D:get('pid:' .. wid)
    if before and before ~= pid then
      -- The master replaced a worker that died: what it had in flight or
      -- held is gone with its connections. Its in-flight requests may still
      -- be running at the upstream, so drained waits orphanGraceMs before
      -- trusting zero.
      local lost_in = D:get('inflight:' .. wid) or 0
      local lost_held = D:get('heldn:' .. wid) or 0
      shm.count('workerRestarts')
      shm.count('lostInFlight', lost_in)
      shm.count('lostHeld', lost_held)
      D:incr('heldtotal', -lost_held, 0)
      if lost_in > 0 then
        local now = shm.now_ms()
        local prior = (D:get('orphans_until') or 0) > now and (D:get('orphans') or 0) or 0
        D:set('orphans_until', now + shm.cfg.orphanGraceMs)
        D:set('orphans', prior + lost_in)
      end
      shm.note('worker', string.format('worker %d (pid %d) died with %d in flight and %d held; replaced by pid %d', wid, before, lost_in, lost_held, pid))
    end
    D:set('inflight:' .. wid, 0)
    D:set('heldn:' .. wid, 0)
    D:set('pid:' .. wid, pid)
  end)
  require('imago.proxy').init_worker(wid)
  require('imago.queue').init_worker(wid, shm.parent())
  local ok, err = ngx.timer.at(0, require('imago.queue').run)
  if not ok then ngx.log(ngx.ERR, 'imago: cannot start the poller: ', err) end
end

return M
