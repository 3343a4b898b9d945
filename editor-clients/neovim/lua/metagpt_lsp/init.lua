--- metagpt-lsp for Neovim 0.11+: `require('metagpt_lsp').setup(opts)` and everything works — review diagnostics on
--- save, explain-and-fix and generate at the cursor, ghost-text completion, progress, `:checkhealth metagpt_lsp`.
--- See `:help metagpt_lsp`.

local config = require('metagpt_lsp.config')

local M = {}

--- Start the server for the configured filetypes and turn on ghost text, progress and the user commands.
--- Calling it again replaces the options (a running server gets the new settings).
--- @param opts? metagpt_lsp.Options
function M.setup(opts)
  if vim.fn.has('nvim-0.11') == 0 then
    vim.notify('metagpt-lsp needs Neovim 0.11 or newer', vim.log.levels.ERROR)
    return
  end
  local resolved = config.resolve(opts)
  local first = config.current == nil
  config.current = resolved

  local server = require('metagpt_lsp.server')
  require('metagpt_lsp.commands').create_user_commands()
  require('metagpt_lsp.progress').listen(resolved.progress.show)

  local group = vim.api.nvim_create_augroup('metagpt_lsp', { clear = true })
  vim.api.nvim_create_autocmd('LspAttach', {
    group = group,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == server.NAME then
        require('metagpt_lsp.inline').attach(args.buf, client, config.current.inline)
      end
    end,
  })
  server.enable(resolved)
  if not first then
    server.notify_settings(resolved.settings)
  end
end

--- One line for your statusline: what the agents are doing now, or ''.
--- @return string
function M.statusline()
  return require('metagpt_lsp.progress').statusline()
end

--- Explain and fix the diagnostic under the cursor.
function M.fix()
  require('metagpt_lsp.code_actions').fix()
end

--- Generate code at the cursor (a stub function, or a comment that asks for code).
function M.generate()
  require('metagpt_lsp.code_actions').generate()
end

--- Review what changed since HEAD in the current file ('file', the default) or the function at the cursor.
--- @param scope? 'file'|'function'
function M.review(scope)
  require('metagpt_lsp.commands').review(scope)
end

--- Accept the ghost text shown in the current buffer: all of it (the default), its next word or its next line (the
--- rest stays shown); false when none is shown.
--- @param what? 'all'|'word'|'line'
--- @return boolean
function M.accept(what)
  return require('metagpt_lsp.inline').accept(0, what)
end

--- Hide the ghost text shown in the current buffer; false when none is shown.
--- @return boolean
function M.dismiss()
  return require('metagpt_lsp.inline').dismiss(0)
end

return M
