--- The plugin's options: defaults, validation and the merged table every other module reads.
---
--- `opts.settings` is passed through untouched: it is the server's own settings tree (docs/protocol.md), sent as
--- `initializationOptions` and answered to `workspace/configuration`. The server checks it and says what it
--- rejected; this module checks only the plugin's own options.

local M = {}

--- @class metagpt_lsp.Options
M.defaults = {
  --- The server command (stdio).
  cmd = { 'metagpt-lsp' },
  --- Extra environment for the server process (e.g. `{ OPENAI_BASE_URL = '...' }`); keys stay in your shell.
  cmd_env = nil,
  filetypes = { 'python', 'javascript', 'javascriptreact', 'typescript', 'typescriptreact', 'go', 'rust', 'java' },
  root_markers = { '.git', 'pyproject.toml', 'package.json', 'go.mod', 'Cargo.toml', 'pom.xml' },
  --- The server's settings (llm, review, inline, team, syntax, logLevel), see `:help metagpt_lsp-settings`.
  settings = {},
  inline = {
    enabled = true,
    --- 'auto': native vim.lsp.inline_completion when this Neovim has it (0.12+), else the extmark fallback.
    --- 'native', 'fallback' force one; 'off' disables ghost text.
    mode = 'auto',
    --- Fallback only: wait this long after the last keystroke before asking (the server debounces as well).
    debounce_ms = 150,
    --- Insert-mode keys, active only while ghost text is shown (otherwise the key does what it did before): accept
    --- the whole offer, its next word, its next line (the rest stays shown), or hide it.
    --- Set a key to false to leave it unmapped.
    keys = { accept = '<C-l>', accept_word = '<M-Right>', accept_line = '<M-C-Right>', dismiss = '<C-]>' },
    hl_group = 'Comment',
  },
  progress = {
    --- Echo agent progress in the command line ('echo'), send it to vim.notify ('notify') or stay quiet (false);
    --- require('metagpt_lsp').statusline() works in every case.
    show = 'echo',
  },
}

local SHOW_VALUES = { echo = true, notify = true, [false] = true }
local MODES = { auto = true, native = true, fallback = true, off = true }
local KEY_NAMES = { accept = true, accept_word = true, accept_line = true, dismiss = true }

--- Merge `opts` over the defaults; a bad option raises an error that names it.
--- @param opts? table
--- @return metagpt_lsp.Options
function M.resolve(opts)
  vim.validate('opts', opts, 'table', true)
  local merged = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), opts or {})
  -- Lists and the server's settings tree are taken whole: merging { 'python' } into the default filetypes by
  -- index would keep the other defaults.
  for _, key in ipairs({ 'cmd', 'filetypes', 'root_markers', 'settings' }) do
    if opts and opts[key] ~= nil then
      merged[key] = vim.deepcopy(opts[key])
    end
  end
  vim.validate('cmd', merged.cmd, 'table')
  vim.validate('cmd_env', merged.cmd_env, 'table', true)
  vim.validate('filetypes', merged.filetypes, 'table')
  vim.validate('root_markers', merged.root_markers, 'table')
  vim.validate('settings', merged.settings, 'table')
  vim.validate('inline', merged.inline, 'table')
  vim.validate('inline.enabled', merged.inline.enabled, 'boolean')
  vim.validate('inline.mode', merged.inline.mode, function(v)
    return MODES[v] ~= nil
  end, "'auto', 'native', 'fallback' or 'off'")
  vim.validate('inline.debounce_ms', merged.inline.debounce_ms, 'number')
  vim.validate('inline.keys', merged.inline.keys, 'table')
  for name, lhs in pairs(merged.inline.keys) do
    vim.validate('inline.keys.' .. name, lhs, function(v)
      return KEY_NAMES[name] and (v == false or (type(v) == 'string' and v ~= ''))
    end, KEY_NAMES[name] and 'a key (a string) or false' or 'one of accept, accept_word, accept_line, dismiss')
  end
  vim.validate('progress.show', merged.progress.show, function(v)
    return SHOW_VALUES[v] ~= nil
  end, "'echo', 'notify' or false")
  return merged
end

--- @type metagpt_lsp.Options?
M.current = nil

return M
