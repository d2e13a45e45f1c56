-- pipeline.lua - wrk script: every write carries DEPTH requests (default 16,
-- or PIPELINE_DEPTH) for the path in PIPELINE_PATH (default /1k.bin), sent
-- again as soon as all of their responses are in. wrk counts each response
-- as one request.
local depth = tonumber(os.getenv("PIPELINE_DEPTH") or "16")
local path = os.getenv("PIPELINE_PATH") or "/1k.bin"
local batch

function init(args)
    local reqs = {}
    for i = 1, depth do
        reqs[i] = wrk.format("GET", path)
    end
    batch = table.concat(reqs)
end

function request()
    return batch
end
