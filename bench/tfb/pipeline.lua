-- pipeline.lua - wrk script for TFB's plaintext test: every write carries
-- DEPTH requests for the URL's path (default 16, or PIPELINE_DEPTH), sent
-- again once all their responses are in. wrk counts each response as one
-- request; its latency figures are per batch.
local depth = tonumber(os.getenv("PIPELINE_DEPTH") or "16")
local batch

function init(args)
    local reqs = {}
    for i = 1, depth do
        reqs[i] = wrk.format("GET", wrk.path)
    end
    batch = table.concat(reqs)
end

function request()
    return batch
end
