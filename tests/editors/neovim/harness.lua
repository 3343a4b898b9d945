--- Shared by the drive scripts: load the plugin from the checkout, wait on conditions, collect what happened, and
--- write the verdict as JSON for tests/test_neovim.py (then exit 0, or 1 when a step failed).
---
--- Usage from a drive script run as `nvim --headless --clean -l drive.lua PLUGIN_DIR VERDICT_JSON ...`:
---   local h = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), 'harness.lua')).start(arg)

local H = {}
H.__index = H

--- @param argv table the script's `arg`
function H.start(argv)
  local self = setmetatable({ verdict = { steps = {}, messages = {}, version = tostring(vim.version()) } }, H)
  self.plugin_dir, self.verdict_path = argv[1], argv[2]
  self.args = { unpack(argv, 3) }
  vim.opt.runtimepath:prepend(self.plugin_dir)
  vim.cmd.runtime('plugin/metagpt_lsp.lua')
  vim.o.showmode = false
  vim.o.swapfile = false
  -- Everything the user would have seen pop up (server messages, plugin notifications).
  vim.notify = function(message, level)
    table.insert(self.verdict.messages, { message = tostring(message), level = level })
  end
  local show_message = vim.lsp.handlers['window/showMessage']
  vim.lsp.handlers['window/showMessage'] = function(err, params, ctx)
    table.insert(self.verdict.messages, { message = params.message, level = params.type, from = 'server' })
    return show_message(err, params, ctx)
  end
  return self
end

--- Wait until `condition()` is true (Neovim's event loop keeps running: LSP traffic, timers, autocmds).
--- Records the step; on timeout the verdict says which step and the script ends.
--- @param name string
--- @param timeout_ms integer
--- @param condition fun(): any
function H:wait(name, timeout_ms, condition)
  local started = vim.uv.hrtime()
  local ok = vim.wait(timeout_ms, function()
    return condition() and true or false
  end, 20)
  table.insert(self.verdict.steps, { name = name, ok = ok, ms = math.floor((vim.uv.hrtime() - started) / 1e6) })
  if not ok then
    self:finish(false, 'timed out waiting for: ' .. name)
  end
end

--- Record a value in the verdict.
function H:record(key, value)
  self.verdict[key] = value
end

--- The client of our server attached to `bufnr`, once it is initialized.
function H:client(bufnr)
  return vim.lsp.get_clients({ name = 'metagpt_lsp', bufnr = bufnr })[1]
end

--- Set the plugin up with `options`, edit `file` and wait until our server is attached and initialized; the buffer.
function H:open_attached(options, file)
  require('metagpt_lsp').setup(options)
  vim.cmd.edit(vim.fn.fnameescape(file))
  local bufnr = vim.api.nvim_get_current_buf()
  self:wait('server attached', 20000, function()
    local client = self:client(bufnr)
    return client and client.initialized
  end)
  return bufnr
end

--- The buffer's text.
function H.text(bufnr)
  return table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), '\n')
end

--- Write the verdict and exit; stops the servers first so nothing outlives Neovim.
--- @param ok boolean
--- @param reason? string
function H:finish(ok, reason)
  self.verdict.ok = ok
  self.verdict.reason = reason
  local started = vim.uv.hrtime()
  for _, client in ipairs(vim.lsp.get_clients()) do
    client:stop()
  end
  self.verdict.servers_stopped = vim.wait(5000, function()
    return #vim.lsp.get_clients() == 0
  end, 20)
  self.verdict.stop_ms = math.floor((vim.uv.hrtime() - started) / 1e6)
  local file = assert(io.open(self.verdict_path, 'w'))
  file:write(vim.json.encode(self.verdict))
  file:close()
  os.exit(ok and 0 or 1)
end

--- Run `body(h)`; an error inside it becomes a failed verdict with the traceback.
function H:run(body)
  local ok, err = xpcall(body, debug.traceback, self)
  if not ok then
    self:finish(false, tostring(err))
  end
  self:finish(true)
end

local GHOST_NAMESPACES = { native = 'nvim.lsp.inline_completion', fallback = 'metagpt_lsp.ghost_text' }

--- The ghost text shown now in each implementation's namespace ({ native = '...', fallback = '...' }), its virtual
--- lines after line breaks.
function H.ghosts(bufnr)
  local shown = {}
  for kind, name in pairs(GHOST_NAMESPACES) do
    local ns = vim.api.nvim_get_namespaces()[name]
    for _, mark in ipairs(ns and vim.api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { details = true }) or {}) do
      local lines = { '' }
      for _, chunk in ipairs(mark[4].virt_text or {}) do
        lines[1] = lines[1] .. chunk[1]
      end
      for _, virt_line in ipairs(mark[4].virt_lines or {}) do
        local line = ''
        for _, chunk in ipairs(virt_line) do
          line = line .. chunk[1]
        end
        lines[#lines + 1] = line
      end
      shown[kind] = (shown[kind] or '') .. table.concat(lines, '\n')
    end
  end
  return shown
end

return H
