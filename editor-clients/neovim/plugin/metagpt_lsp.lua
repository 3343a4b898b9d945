-- metagpt-lsp: the user commands exist from startup (they explain what is missing until setup() has run);
-- the server starts only when you call require('metagpt_lsp').setup(opts). See :help metagpt_lsp.
if vim.g.loaded_metagpt_lsp or vim.fn.has('nvim-0.11') == 0 then
  return
end
vim.g.loaded_metagpt_lsp = true

require('metagpt_lsp.commands').create_user_commands()
