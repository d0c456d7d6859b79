-- wrk script: each of wrk's threads stops after its share of STOP_AFTER answers (bench/spin_shim.py
-- counts the visits actually recorded, so the few still in flight do not skew a ratio).
local share
function init(args)
  share = math.ceil((tonumber(os.getenv("STOP_AFTER")) or 1000) / 2)
end
local answered = 0
function response(status, headers, body)
  answered = answered + 1
  if answered >= share then
    wrk.thread:stop()
  end
end
