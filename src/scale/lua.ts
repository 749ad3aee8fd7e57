/**
 * Lua scripts of the RedisLimiter. Each runs atomically in Redis, so check-and-reserve cannot interleave across
 * processes. Time is Redis's own clock (TIME), so servers with skewed clocks share one window.
 *
 * Keys of one API key share the hash tag `{<encoded key>}` (one Redis Cluster slot):
 *   <p>:{k}:req      ZSET  request id → admission time (ms)                 RPM window
 *   <p>:{k}:tok      ZSET  request id → admission time (ms)                 TPM window
 *   <p>:{k}:tokn     HASH  request id → tokens (reserved, then actual); `_sum` = total in the window
 *   <p>:{k}:b:<period>:<start>  STRING  pico-units spent + reserved in that budget period
 * Window keys expire windowMs + 1 s after the last admission; budget keys at the end of their period + 1 h.
 *
 * Money stays exact: budget values are 64-bit integers changed only with INCRBY and compared as decimal strings
 * (Lua numbers are doubles and would round above 2^53 pico-units ≈ 9,007 currency units).
 */

const LE = `
local function le(a, b)
  if string.sub(a, 1, 1) == '-' then return true end
  if #a ~= #b then return #a < #b end
  return a <= b
end
`;

/**
 * KEYS: req, tok, tokn, budget_1..budget_n
 * ARGV: windowMs, rpm (-1 = none), tpm (-1 = none), tokens, id, cost, n, requireSeed (0/1), then per budget:
 *       limit, expireAtMs
 * Returns {0, now} admitted; {1, retryMs (-1 = never), count} rpm; {2, retryMs (-1 = never), inUse} tpm;
 *         {3, i, spentBefore} budget i; {4, i} budget key i missing and requireSeed.
 */
export const ADMIT_LUA = `${LE}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local win = tonumber(ARGV[1])
local rpm = tonumber(ARGV[2])
local tpm = tonumber(ARGV[3])
local tokens = tonumber(ARGV[4])
local id = ARGV[5]
local cost = ARGV[6]
local nb = tonumber(ARGV[7])
local cutoff = now - win
if ARGV[8] == '1' then
  for i = 1, nb do
    if redis.call('EXISTS', KEYS[3 + i]) == 0 then return {4, i} end
  end
end
local done = 0
local function revert()
  for j = 1, done do redis.call('DECRBY', KEYS[3 + j], cost) end
end
for i = 1, nb do
  local k = KEYS[3 + i]
  redis.call('INCRBY', k, cost)
  redis.call('PEXPIREAT', k, ARGV[8 + 2 * i])
  done = i
  if not le(redis.call('GET', k), ARGV[7 + 2 * i]) then
    revert()
    return {3, i, redis.call('GET', k) or '0'}
  end
end
if rpm >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
  local n = redis.call('ZCARD', KEYS[1])
  if n + 1 > rpm then
    revert()
    local retry = -1
    if rpm > 0 then
      local o = redis.call('ZRANGE', KEYS[1], n - rpm, n - rpm, 'WITHSCORES')
      retry = math.max(1, tonumber(o[2]) + win - now)
    end
    return {1, retry, n}
  end
end
if tpm >= 0 then
  local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', cutoff)
  if #old > 0 then
    local freed = 0
    for _, m in ipairs(old) do
      freed = freed + tonumber(redis.call('HGET', KEYS[3], m) or '0')
      redis.call('HDEL', KEYS[3], m)
    end
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', cutoff)
    redis.call('HINCRBY', KEYS[3], '_sum', -freed)
  end
  local sum = tonumber(redis.call('HGET', KEYS[3], '_sum') or '0')
  if sum + tokens > tpm then
    revert()
    local retry = -1
    if tokens <= tpm then
      local es = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
      local freed = 0
      for j = 1, #es, 2 do
        freed = freed + tonumber(redis.call('HGET', KEYS[3], es[j]) or '0')
        if sum - freed + tokens <= tpm then
          retry = math.max(1, tonumber(es[j + 1]) + win - now)
          break
        end
      end
    end
    return {2, retry, sum}
  end
end
if rpm >= 0 then
  redis.call('ZADD', KEYS[1], now, id)
  redis.call('PEXPIRE', KEYS[1], win + 1000)
end
if tpm >= 0 then
  redis.call('ZADD', KEYS[2], now, id)
  redis.call('HSET', KEYS[3], id, tokens)
  redis.call('HINCRBY', KEYS[3], '_sum', tokens)
  redis.call('PEXPIRE', KEYS[2], win + 1000)
  redis.call('PEXPIRE', KEYS[3], win + 1000)
end
return {0, now}
`;

/**
 * Replace reservations by actual usage. KEYS: tokn, budget_1..budget_n. ARGV: id, actualTokens ('' = skip),
 * costDelta ('' = skip). A window entry already pruned, or a budget key already expired, is left alone (the
 * in-memory limiter does the same).
 */
export const SETTLE_LUA = `
if ARGV[2] ~= '' then
  local old = redis.call('HGET', KEYS[1], ARGV[1])
  if old then
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
    redis.call('HINCRBY', KEYS[1], '_sum', tonumber(ARGV[2]) - tonumber(old))
  end
end
if ARGV[3] ~= '' and ARGV[3] ~= '0' then
  for i = 2, #KEYS do
    if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('INCRBY', KEYS[i], ARGV[3]) end
  end
end
return 1
`;

/** Charge without a check. KEYS: budget_1..n. ARGV: cost, expireAt_1..n. */
export const CHARGE_LUA = `
for i = 1, #KEYS do
  redis.call('INCRBY', KEYS[i], ARGV[1])
  redis.call('PEXPIREAT', KEYS[i], ARGV[1 + i])
end
return 1
`;
