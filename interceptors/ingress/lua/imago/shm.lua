-- Shared state of the data plane, common to every nginx worker.
--
-- Shared memory, all created by the master before it forks the workers, so
-- it outlives any worker that crashes:
--  * the shared dict `imago` (lua_shared_dict): the switch record, the
--    counters, the hold queue's size, per-worker in-flight counts. Every
--    operation on it takes the zone's mutex, so a sequence of them is seen
--    in the same order by every worker (the atomicity argument relies on it).
--  * the served ring: an anonymous shared mapping of fixed-size C records
--    (the atomicity evidence), written without locks: slot = seq % size,
--    where seq comes from an atomic incr, and the writer stores `seq` last;
--  * per-worker figures (requests, latency), each slot written by one worker.
local ffi = require 'ffi'
local C = ffi.C

ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } imago_timespec;
int clock_gettime(int clk, imago_timespec *tp);
void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset);
int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5);
int getppid(void);
int kill(int pid, int sig);
]]

local M = {}

M.D = ngx.shared.imago

local ts = ffi.new('imago_timespec')
--- Wall-clock milliseconds with microsecond precision (ngx.now() is cached per event-loop turn).
function M.now_ms()
  C.clock_gettime(0, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

-- Both mappings are flat arrays of numbers (double*, int32_t*): indexing one
-- gives a number, where a struct field would allocate a cdata reference on
-- each access in code LuaJIT does not compile.
local function map(bytes, what)
  local p = C.mmap(nil, bytes, 3, 0x21, -1, 0) -- PROT_READ|WRITE, MAP_SHARED|ANONYMOUS: inherited at fork
  if ffi.cast('intptr_t', p) == -1 then error('imago: mmap of the ' .. what .. ' failed') end
  return ffi.cast('char *', p)
end

--- The served ring (called once, in the master): seq, start and stop (double), status and upstream (int32).
function M.map_ring(size)
  local p = map(size * (3 * 8 + 2 * 4), 'served ring')
  M.ring_seq = ffi.cast('double *', p)
  M.ring_start = ffi.cast('double *', p + size * 8)
  M.ring_stop = ffi.cast('double *', p + size * 16)
  M.ring_status = ffi.cast('int32_t *', p + size * 24)
  M.ring_up = ffi.cast('int32_t *', p + size * 28)
  M.ring_size = size
end

--- Per-worker figures, one block of doubles per worker id, written by that
--  worker only, without locks; read by any worker (summed); kept when a
--  worker is replaced. Block: [0] requests, [1..16] latency histogram,
--  [17] latency sum, then five arrays of TIMELINE_BUCKETS (100 ms buckets):
--  key, count, sum, max, errors.
M.TIMELINE_BUCKETS = 3000 -- five minutes
local HEAD = 18
local BLOCK = HEAD + 5 * M.TIMELINE_BUCKETS
function M.map_stats(workers)
  local p = ffi.cast('double *', map(workers * BLOCK * 8, 'worker figures'))
  M.stats_base = p
  for w = 0, workers - 1 do
    local tk = M.stats(w).tl_key
    for i = 0, M.TIMELINE_BUCKETS - 1 do tk[i] = -1 end
  end
end

--- Pointers into worker w's block.
function M.stats(w)
  local b = M.stats_base + w * BLOCK
  local n = M.TIMELINE_BUCKETS
  return {
    head = b, -- [0] requests, [1..16] histogram, [17] latency sum
    tl_key = b + HEAD, tl_count = b + HEAD + n, tl_sum = b + HEAD + 2 * n, tl_max = b + HEAD + 3 * n, tl_err = b + HEAD + 4 * n,
  }
end

--- Ask the kernel to send `sig` to this process when its parent dies.
function M.die_with_parent(sig)
  C.prctl(1, sig, 0, 0, 0) -- PR_SET_PDEATHSIG
end

--- Whether process `pid` exists (kill with signal 0).
function M.alive(pid)
  return C.kill(pid, 0) == 0 or ffi.errno() ~= 3 -- ESRCH: no such process
end

function M.signal(pid, sig) C.kill(pid, sig) end

function M.parent() return C.getppid() end

--- The transition lock: one holder at a time across workers. Critical
--  sections never yield, so the lock is held for microseconds; its expiry
--  only matters when a worker dies inside one.
local LOCK_TTL = 0.2
function M.lock(can_yield)
  local D = M.D
  for i = 1, 1e6 do
    if D:add('lock', true, LOCK_TTL) then return true end
    -- (ngx.sleep(0) is slow on stock nginx; a millisecond is plenty for a holder that never yields.)
    if can_yield and i % 64 == 0 then ngx.sleep(0.001) end
  end
  error('imago: could not take the transition lock')
end

function M.unlock() M.D:delete('lock') end

--- Runs fn under the lock, releasing it whatever happens.
function M.locked(can_yield, fn, ...)
  M.lock(can_yield)
  local ok, a, b, c = pcall(fn, ...)
  M.unlock()
  if not ok then error(a, 0) end
  return a, b, c
end

M.COUNTERS = {
  'held', 'holdOverflow', 'heldDisconnected', 'upstreamErrors', 'clientAborts',
  'badRequests', 'tooLarge', 'timeouts', 'autoReleases', 'upstreamRetries', 'shadowDropped',
  'workerRestarts', 'lostInFlight', 'lostHeld', 'writeBodyTooLarge',
}

function M.count(name, n) M.D:incr('c:' .. name, n or 1, 0) end

--- A transition note, kept in a ring of 200 (GET /status shows the last ones).
function M.note(what, detail)
  local D = M.D
  local n = D:incr('trn', 1, 0)
  D:set('tr:' .. (n % 200), string.format('%.3f', M.now_ms()) .. '\t' .. what .. '\t' .. detail)
end

--- Minimal JSON encoding for the internal API (tables with only string keys
--  are objects, tables with a [1] or marked array are arrays).
local function esc(s)
  return (s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' elseif c == '\\' then return '\\\\' end
    return string.format('\\u%04x', c:byte())
  end))
end

local ARRAY = {}
M.ARRAY = ARRAY
function M.array(t) return setmetatable(t, ARRAY) end

function M.json(v)
  local t = type(v)
  if t == 'string' then return '"' .. esc(v) .. '"' end
  if t == 'number' then
    if v ~= v or v == math.huge or v == -math.huge then return 'null' end
    if v == math.floor(v) and math.abs(v) < 1e15 then return string.format('%d', v) end
    return string.format('%.17g', v)
  end
  if t == 'boolean' then return v and 'true' or 'false' end
  if t == 'nil' then return 'null' end
  if getmetatable(v) == ARRAY or v[1] ~= nil then
    local out = {}
    for i = 1, #v do out[i] = M.json(v[i]) end
    return '[' .. table.concat(out, ',') .. ']'
  end
  local out = {}
  for k, x in pairs(v) do out[#out + 1] = '"' .. esc(k) .. '":' .. M.json(x) end
  return '{' .. table.concat(out, ',') .. '}'
end

return M
