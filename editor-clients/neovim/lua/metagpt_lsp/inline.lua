--- Ghost-text completion: Neovim's own `vim.lsp.inline_completion` where it exists (0.12+, the standard
--- `textDocument/inlineCompletion`), the extmark fallback of ghost_text.lua elsewhere (0.11), and the accept and
--- dismiss keys for both. The keys are expression mappings: while nothing is shown they type what they always did.
--- An offer is accepted whole, or its next word or line (offer_parts.lua); accepting a part keeps the rest shown: the
--- fallback draws it at once, Neovim's own module asks again and the server answers from its type-through cache
--- (no model call).

local ghost_text = require('metagpt_lsp.ghost_text')
local offer_parts = require('metagpt_lsp.offer_parts')

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

--- Neovim's inline-completion state for `bufnr` (0.12's internal "completor": `current` item, `hide()`), or nil
--- where this Neovim keeps it elsewhere (then a mismatching keystroke is left to Neovim: it shows what it had until
--- its next answer).
local function native_completor(bufnr)
  local ok, capability = pcall(require, 'vim.lsp._capability')
  local kind = ok and type(capability) == 'table' and type(capability.all) == 'table'
    and capability.all.inline_completion
  local completor = type(kind) == 'table' and type(kind.active) == 'table' and kind.active[bufnr]
  if type(completor) == 'table' and type(completor.hide) == 'function' then
    return completor
  end
end

--- After a keystroke with Neovim's own inline completion: Neovim keeps showing its item, less as many characters as
--- the cursor moved, until its next answer; when what was typed is not the item's beginning, hide it now.
--- @param bufnr integer
local function drop_mismatched_native_item(bufnr)
  local completor = native_completor(bufnr)
  local item = completor and completor.current
  if not item or vim.api.nvim_get_current_buf() ~= bufnr then
    return
  end
  local text = type(item.insert_text) == 'string' and item.insert_text or (item.insert_text or {}).value
  local cursor = vim.api.nvim_win_get_cursor(0)
  local row, col = cursor[1] - 1, cursor[2]
  local start_row, start_col = row, col
  if item.range then
    start_row, start_col = item.range.start.row, item.range.start.col
  end
  local before = start_row < row or (start_row == row and start_col <= col)
  local typed = before and table.concat(vim.api.nvim_buf_get_text(bufnr, start_row, start_col, row, col, {}), '\n')
  if type(text) == 'string' and typed and vim.startswith(text, typed) and #typed < #text then
    return
  end
  completor.current = nil
  completor:hide()
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

--- Insert the next word or line of a native item at the cursor and show the rest at once (the next answer, from
--- the server's type-through cache, replaces it); the whole item when that part is all of it.
--- @param bufnr integer
--- @param item vim.lsp.inline_completion.Item
--- @param what 'word'|'line'
local function accept_native_part(bufnr, item, what)
  local text = type(item.insert_text) == 'string' and item.insert_text or item.insert_text.value
  local win = vim.fn.bufwinid(bufnr)
  local cursor = vim.api.nvim_win_get_cursor(win)
  local row, col = cursor[1] - 1, cursor[2]
  local range = item.range
  local start_row, start_col = row, col
  local end_row, end_col = row, col
  if range then
    start_row, start_col, end_row, end_col = range.start.row, range.start.col, range.end_.row, range.end_.col
  end
  local typed = ''
  if start_row < row or (start_row == row and start_col < col) then
    typed = table.concat(vim.api.nvim_buf_get_text(bufnr, start_row, start_col, row, col, {}), '\n')
  end
  local at_cursor = (start_row < row or (start_row == row and start_col <= col)) and vim.startswith(text, typed)
  local part, lines
  if at_cursor then
    part = offer_parts.take(text:sub(#typed + 1), what)
  end
  if at_cursor and #typed + #part < #text then
    start_row, start_col, end_row, end_col = row, col, row, col
    lines = vim.split(part, '\n', { plain = true })
  else
    lines = vim.split(text, '\n', { plain = true })
  end
  vim.api.nvim_buf_set_text(bufnr, start_row, start_col, end_row, end_col, lines)
  vim.api.nvim_win_set_cursor(win, { start_row + #lines, (#lines == 1 and start_col or 0) + #lines[#lines] })
  local completor = native_completor(bufnr)
  if at_cursor and #typed + #part < #text and completor and completor.current == nil then
    completor.current = { _index = item._index, client_id = item.client_id, command = item.command,
      insert_text = text:sub(#typed + #part + 1) }
    completor:show()
  end
end

--- Accept what is shown: the whole offer, or its next word or line; false when nothing is shown.
--- @param bufnr? integer
--- @param what? 'all'|'word'|'line' (default 'all')
--- @return boolean
function M.accept(bufnr, what)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  what = what or 'all'
  if ghost_text.accept(bufnr, what) then
    return true
  end
  if vim.lsp.inline_completion == nil then
    return false
  end
  if what == 'all' then
    return vim.lsp.inline_completion.get({ bufnr = bufnr })
  end
  return vim.lsp.inline_completion.get({ bufnr = bufnr, on_accept = function(item)
    if type(item.insert_text) ~= 'string' and item.insert_text.kind == 'snippet' then
      vim.snippet.expand(item.insert_text.value) -- a snippet goes in whole
    else
      accept_native_part(bufnr, item, what)
    end
  end })
end

--- Accept the next word of what is shown; false when nothing is.
--- @param bufnr? integer
function M.accept_word(bufnr)
  return M.accept(bufnr, 'word')
end

--- Accept the next line of what is shown; false when nothing is.
--- @param bufnr? integer
function M.accept_line(bufnr)
  return M.accept(bufnr, 'line')
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

--- Buffer-local insert-mode mappings for accepting (whole, a word, a line) and dismissing.
--- @param bufnr integer
--- @param keys table { accept = lhs|false, accept_word = lhs|false, accept_line = lhs|false, dismiss = lhs|false }
local function map_keys(bufnr, keys)
  local actions = {
    accept = 'accept the ghost text',
    accept_word = 'accept the next word of the ghost text',
    accept_line = 'accept the next line of the ghost text',
    dismiss = 'hide the ghost text',
  }
  for name, lhs in pairs(keys) do
    if lhs and actions[name] then
      vim.keymap.set('i', lhs, function()
        if not M.visible(bufnr) then
          return lhs
        end
        return ('<Cmd>lua require("metagpt_lsp.inline").%s(%d)<CR>'):format(name, bufnr)
      end, { buffer = bufnr, expr = true, desc = 'metagpt-lsp: ' .. actions[name] })
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
    vim.api.nvim_create_autocmd('TextChangedI', {
      group = vim.api.nvim_create_augroup('metagpt_lsp.inline.' .. bufnr, { clear = true }),
      buffer = bufnr,
      callback = function()
        drop_mismatched_native_item(bufnr)
      end,
    })
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
  elseif kind == 'fallback' then
    ghost_text.attach(bufnr, client.id, inline)
  else
    return
  end
  map_keys(bufnr, inline.keys)
end

return M
