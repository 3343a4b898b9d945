--- Ghost-text completion: Neovim's own `vim.lsp.inline_completion` where it exists (0.12+, the standard
--- `textDocument/inlineCompletion`), the extmark fallback of ghost_text.lua elsewhere (0.11), and the accept and
--- dismiss keys for both. The keys are expression mappings: while nothing is shown they type what they always did.

local ghost_text = require('metagpt_lsp.ghost_text')

local M = {}

--- Which implementation `mode` means on this Neovim: 'native', 'fallback' or nil (off).
--- @param inline table the `inline` options
--- @return 'native'|'fallback'|nil
function M.kind(inline)
  if not inline.enabled or inline.mode == 'off' then
    return nil
  end
  local has_native = vim.lsp.inline_completion ~= nil
  if inline.mode == 'native' and not has_native then
    vim.notify_once('metagpt-lsp: inline.mode = "native" needs Neovim 0.12+; using the fallback',
      vim.log.levels.WARN)
    return 'fallback'
  end
  if inline.mode == 'fallback' or not has_native then
    return 'fallback'
  end
  return 'native'
end

local function native_namespace()
  return vim.api.nvim_get_namespaces()['nvim.lsp.inline_completion']
end

--- Whether ghost text (of either kind) is shown in `bufnr`.
--- @param bufnr integer
function M.visible(bufnr)
  if ghost_text.visible(bufnr) then
    return true
  end
  local ns = native_namespace()
  return ns ~= nil and #vim.api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { limit = 1 }) > 0
end

--- Accept what is shown; false when nothing is.
--- @param bufnr? integer
--- @return boolean
function M.accept(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  if ghost_text.accept(bufnr) then
    return true
  end
  return vim.lsp.inline_completion ~= nil and vim.lsp.inline_completion.get({ bufnr = bufnr })
end

--- Hide what is shown; false when nothing is.
--- @param bufnr? integer
--- @return boolean
function M.dismiss(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  if not M.visible(bufnr) then
    return false
  end
  ghost_text.dismiss(bufnr)
  if vim.lsp.inline_completion and vim.lsp.inline_completion.is_enabled({ bufnr = bufnr }) then
    -- The native module has no public "hide": switching it off and on for the buffer drops the item.
    vim.lsp.inline_completion.enable(false, { bufnr = bufnr })
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
  end
  return true
end

--- Buffer-local insert-mode mappings for accept and dismiss.
--- @param bufnr integer
--- @param keys table { accept = lhs|false, dismiss = lhs|false }
local function map_keys(bufnr, keys)
  local actions = { accept = M.accept, dismiss = M.dismiss }
  for name, lhs in pairs(keys) do
    if lhs and actions[name] then
      vim.keymap.set('i', lhs, function()
        if not M.visible(bufnr) then
          return lhs
        end
        return ('<Cmd>lua require("metagpt_lsp.inline").%s(%d)<CR>'):format(name, bufnr)
      end, { buffer = bufnr, expr = true, desc = 'metagpt-lsp: ' .. name .. ' ghost text' })
    end
  end
end

--- Turn ghost text on for a buffer the client just attached to.
--- @param bufnr integer
--- @param client vim.lsp.Client
--- @param inline table the `inline` options
function M.attach(bufnr, client, inline)
  local kind = M.kind(inline)
  if kind == 'native' then
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
  elseif kind == 'fallback' then
    ghost_text.attach(bufnr, client.id, inline)
  else
    return
  end
  map_keys(bufnr, inline.keys)
end

return M
