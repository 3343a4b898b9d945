--- Drive: what setup() hands to vim.lsp.config for given options — lists taken whole, the server's settings as
--- initializationOptions and as the `metagptLsp` section, the refresh capability — and what a bad option says.
--- A second setup() replaces the first one's settings. No server is started (no buffer of a configured filetype).
---
--- nvim --headless --clean -l setup_options.lua PLUGIN_DIR VERDICT_JSON

local h = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), 'harness.lua')).start(arg)

--- The parts of the registered client config the test looks at.
local function registered()
  local config = vim.lsp.config.metagpt_lsp
  return {
    cmd = config.cmd,
    filetypes = config.filetypes,
    init_options = config.init_options,
    settings = config.settings,
    refresh = vim.tbl_get(config.capabilities or {}, 'workspace', 'diagnostics', 'refreshSupport'),
    enabled = vim.lsp.is_enabled('metagpt_lsp'),
  }
end

h:run(function()
  local metagpt = require('metagpt_lsp')
  metagpt.setup({ filetypes = { 'python' }, cmd = { 'my-metagpt-lsp', '--log-level', 'debug' },
    settings = { llm = { model = 'qwen2.5-coder:7b' } } })
  h:record('first', registered())
  metagpt.setup({})
  h:record('second', registered())
  local ok, err = pcall(metagpt.setup, { inline = { mode = 'sideways' } })
  h:record('bad_option', { ok = ok, message = tostring(err) })
  local key_ok, key_err = pcall(metagpt.setup, { inline = { keys = { accept_wrod = '<M-Right>' } } })
  h:record('bad_key', { ok = key_ok, message = tostring(key_err) })
  h:record('after_bad', registered())
  h:record('clients', #vim.lsp.get_clients())
end)
