--- Starting the language server with Neovim 0.11's `vim.lsp.config` + `vim.lsp.enable`, and finding its client.
---
--- Settings travel twice, as the protocol asks: as `initializationOptions`, and as the `metagptLsp` section that
--- Neovim's built-in `workspace/configuration` handler answers from `settings`. The server pushes nothing on
--- review for pull clients unless they declare `workspace.diagnostics.refreshSupport`; Neovim 0.11 and 0.12 pull
--- diagnostics but do not declare it, so this client declares it and answers `workspace/diagnostic/refresh` by
--- pulling again for every attached buffer — that is how review findings appear after a save.

local M = {}

M.NAME = 'metagpt_lsp'

--- Pull diagnostics again for every buffer the client is attached to.
--- @param ctx lsp.HandlerContext
local function on_diagnostic_refresh(_, _, ctx)
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  if not client then
    return vim.NIL
  end
  for bufnr in pairs(client.attached_buffers) do
    local params = { textDocument = vim.lsp.util.make_text_document_params(bufnr) }
    client:request('textDocument/diagnostic', params, function(err, result, request_ctx)
      vim.lsp.diagnostic.on_diagnostic(err, result, request_ctx)
    end, bufnr)
  end
  return vim.NIL
end

--- Settings as they go on the wire: an empty table must be a JSON object, not an array.
--- @param settings table
local function wire(settings)
  return next(settings) and settings or vim.empty_dict()
end

--- The table for `vim.lsp.config`.
--- @param opts metagpt_lsp.Options
--- @return vim.lsp.Config
function M.client_config(opts)
  local settings = wire(opts.settings)
  return {
    cmd = opts.cmd,
    cmd_env = opts.cmd_env,
    filetypes = opts.filetypes,
    root_markers = opts.root_markers,
    init_options = settings,
    settings = { metagptLsp = settings },
    capabilities = { workspace = { diagnostics = { refreshSupport = true } } },
    handlers = { ['workspace/diagnostic/refresh'] = on_diagnostic_refresh },
  }
end

--- Register and enable the server for `opts.filetypes` (already open buffers of those types attach too).
--- Assigning (rather than calling `vim.lsp.config(name, ...)`, which merges) makes a second setup() replace the
--- settings of the first instead of keeping keys it no longer has.
--- @param opts metagpt_lsp.Options
function M.enable(opts)
  vim.lsp.config[M.NAME] = M.client_config(opts)
  vim.lsp.enable(M.NAME)
end

--- Tell the running server about changed settings (`workspace/didChangeConfiguration`).
--- @param settings table
function M.notify_settings(settings)
  settings = wire(settings)
  for _, client in ipairs(vim.lsp.get_clients({ name = M.NAME })) do
    client.settings = { metagptLsp = settings }
    client:notify('workspace/didChangeConfiguration', { settings = { metagptLsp = settings } })
  end
end

--- The metagpt-lsp client attached to `bufnr`, or nil after telling the user why there is none.
--- @param bufnr? integer
--- @param quiet? boolean do not notify
--- @return vim.lsp.Client?
function M.client_for(bufnr, quiet)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local client = vim.lsp.get_clients({ name = M.NAME, bufnr = bufnr })[1]
  if not client and not quiet then
    vim.notify(
      ('metagpt-lsp is not attached to this buffer (filetype %q); run require("metagpt_lsp").setup() and open '
        .. 'a file of a configured filetype'):format(vim.bo[bufnr].filetype),
      vim.log.levels.WARN
    )
  end
  return client
end

--- Any running metagpt-lsp client (for commands that are not about one buffer).
--- @return vim.lsp.Client?
function M.any_client()
  return M.client_for(0, true) or vim.lsp.get_clients({ name = M.NAME })[1]
end

return M
