--- `:checkhealth metagpt_lsp`: Neovim version, setup() called, the server command found and its --version, the LLM
--- endpoint probed by `metagpt-lsp doctor` (reachable, models, chat, streaming, structured output, latency,
--- context), and which ghost text is in use.
---
--- The endpoint probed is the one the running server reports (`metagpt.status`), else the one the settings and the
--- environment resolve to. With the embedded model and a server running, nothing is probed: a second model would
--- be started next to the one in use.

local M = {}

local health = vim.health
local EMBEDDED = 'embedded local model'
local DOCTOR_TIMEOUT_MS = { endpoint = 60000, embedded = 180000 }

--- The running server's `metagpt.status`, or nil when no server runs.
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

--- @param opts metagpt_lsp.Options
--- @param args string[]
--- @param timeout_ms integer
--- @return vim.SystemCompleted
local function run_server_command(opts, args, timeout_ms)
  local command = vim.list_extend(vim.deepcopy(opts.cmd), args)
  local ok, process = pcall(vim.system, command, { text = true, env = opts.cmd_env })
  if not ok then
    return { code = -1, stdout = '', stderr = tostring(process) }
  end
  return process:wait(timeout_ms)
end

local function check_server(opts)
  local path = vim.fn.exepath(opts.cmd[1])
  if path == '' then
    health.error(('server command %q not found on PATH'):format(opts.cmd[1]), {
      'pip install metagpt-lsp (or pip install -e . in a checkout), in a Python environment whose bin/ is on PATH',
      'or set cmd = { "/path/to/metagpt-lsp" } in setup()',
    })
    return false
  end
  local run = run_server_command(opts, { '--version' }, 15000)
  if run.code ~= 0 then
    health.error(('%s --version failed (exit %s): %s'):format(path, tostring(run.code), run.stderr or ''))
    return false
  end
  health.ok(('server: %s (%s)'):format(vim.trim(run.stdout or ''), path))
  return true
end

--- Report the lines of `metagpt-lsp doctor`: "  ok    name   detail", "  warn ...", "  FAIL ...", "  skip ...",
--- each perhaps followed by "   fix: advice".
--- @param output string
function M.report_doctor(output)
  local report = { ok = health.ok, warn = health.warn, FAIL = health.error, skip = health.info }
  local pending
  local function flush()
    if pending then
      report[pending.status](pending.text, pending.fix)
      pending = nil
    end
  end
  for _, line in ipairs(vim.split(output, '\n', { plain = true })) do
    local status, rest = line:match('^  (%S+)%s+(.+)$')
    local fix = line:match('^%s+fix: (.+)$')
    if fix and pending then
      pending.fix = { fix }
    elseif status and report[status] then
      flush()
      local name, detail = rest:match('^(.-)%s%s+(.+)$')
      pending = { status = status, text = name and (name .. ': ' .. detail) or rest }
    end
  end
  flush()
end

local function check_endpoint(opts)
  local status = running_status()
  if status then
    health.info(('the running server uses %s at %s (API key %s)'):format(status.model, status.endpoint,
      status.apiKey))
    if status.endpoint == EMBEDDED then
      health.ok('the embedded model is in use by the running server (not probed: that would start a second one)')
      return
    end
  else
    health.info('no server is running here: probing the endpoint the settings and the environment resolve to')
  end
  if run_server_command(opts, { 'doctor', '--help' }, 15000).code ~= 0 then
    health.warn('this server has no `doctor` command: the endpoint was not probed', { 'upgrade metagpt-lsp' })
    return
  end
  local args = { 'doctor' }
  if next(opts.settings) then
    local settings_file = vim.fn.tempname() .. '.json'
    vim.fn.writefile({ vim.json.encode(opts.settings) }, settings_file)
    vim.list_extend(args, { '--settings', settings_file })
  end
  if status then
    vim.list_extend(args, { '--base-url', status.endpoint, '--model', status.model })
  end
  local timeout = status and DOCTOR_TIMEOUT_MS.endpoint or DOCTOR_TIMEOUT_MS.embedded
  local run = run_server_command(opts, args, timeout)
  local header = vim.split(run.stdout or '', '\n', { plain = true })[1] or ''
  health.info(header ~= '' and header or 'metagpt-lsp doctor')
  M.report_doctor(run.stdout or '')
  if run.code ~= 0 and run.code ~= 1 then
    health.error(('metagpt-lsp doctor did not finish (exit %s within %d s): %s'):format(tostring(run.code),
      timeout / 1000, vim.trim(run.stderr or '')))
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
