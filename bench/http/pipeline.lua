-- pipeline.lua - wrk script: every write carries DEPTH requests (default 16,
-- or the PIPELINE_DEPTH environment variable), sent again as soon as all of
-- their responses are in. wrk counts each response as one request; its
-- latency figures are per batch.
local depth = tonumber(os.getenv("PIPELINE_DEPTH") or "16")
local batch

function init(args)
    local reqs = {}
    for i = 1, depth do
        reqs[i] = wrk.format("GET", "/")
    end
    batch = table.concat(reqs)
end

function request()
    return batch
end
