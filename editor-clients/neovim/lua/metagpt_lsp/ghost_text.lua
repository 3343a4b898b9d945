--- Ghost text for Neovim 0.11, which has no `textDocument/inlineCompletion`: the server's fallback request
--- `metagpt/inlineCompletion` (same params and result), shown as an extmark: the offer's first line inline at the
--- cursor, its other lines as virtual lines below.
---
--- In insert mode a keystroke that types the next characters of the offer shown (type-through) keeps the rest of it
--- shown and asks nothing. Any other keystroke (TextChangedI, CursorMovedI) hides what is shown, cancels the request in
--- flight (`$/cancelRequest`) and restarts a short debounce; when it runs out the request is sent (entering insert
--- mode starts it too). An answer is shown only if the buffer and the cursor are still where they were when it was
--- asked. Accepting the whole applies the item's edit (its range, in the client's position encoding) and puts the
--- cursor after the inserted text; accepting a word or a line inserts that part at the cursor and keeps the rest
--- shown; leaving insert mode dismisses.

local offer_parts = require('metagpt_lsp.offer_parts')

local M = {}

M.METHOD = 'metagpt/inlineCompletion'
M.namespace = vim.api.nvim_create_namespace('metagpt_lsp.ghost_text')
local METHOD_NOT_FOUND = -32601

--- Per buffer: { client_id, debounce_ms, hl_group, timer, request_id, item }.
--- @type table<integer, table>
M.buffers = {}

--- What is shown, in buffer (byte) coordinates. An insertion at the cursor (the usual offer):
---   { row, col, rest, replaced, tail, tick }: `rest` goes in at (row, col); accepting it whole also replaces
---   `replaced`, the text right of (row, col) the offer ends with (an auto-closed bracket); `tail` is the text right
---   of (row, col) on its line when shown (type-through keeps it).
--- A replacement of text before the cursor: { replacement = { start_row, start_col, end_row, end_col, lines }, tick }.
--- @class metagpt_lsp.GhostItem

--- @param bufnr integer
--- @param position lsp.Position
--- @param encoding string
--- @return integer row, integer col byte column
local function to_buffer(bufnr, position, encoding)
  local line = vim.api.nvim_buf_get_lines(bufnr, position.line, position.line + 1, false)[1] or ''
  return position.line, vim.str_byteindex(line, encoding, position.character, false)
end

--- The (row, col) reached after walking `text` from (row, col).
local function advance(row, col, text)
  local lines = vim.split(text, '\n', { plain = true })
  if #lines == 1 then
    return row, col + #text
  end
  return row + #lines - 1, #lines[#lines]
end

--- The buffer's text between two positions (rows and byte columns, end exclusive).
local function text_between(bufnr, start_row, start_col, end_row, end_col)
  return table.concat(vim.api.nvim_buf_get_text(bufnr, start_row, start_col, end_row, end_col, {}), '\n')
end

--- The text of `row` right of `col`.
local function line_tail(bufnr, row, col)
  return (vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''):sub(col + 1)
end

--- Stop the debounce timer and cancel the request in flight.
--- @param state table
local function cancel_pending(state)
  if state.timer then
    state.timer:stop()
  end
  if state.request_id then
    local client = vim.lsp.get_client_by_id(state.client_id)
    if client then
      client:cancel_request(state.request_id)
    end
    state.request_id = nil
  end
end

--- Hide the ghost text and forget the item.
--- @param bufnr integer
function M.dismiss(bufnr)
  local state = M.buffers[bufnr]
  if vim.api.nvim_buf_is_valid(bufnr) then
    vim.api.nvim_buf_clear_namespace(bufnr, M.namespace, 0, -1)
  end
  if state then
    state.item = nil
  end
end

--- Whether ghost text is shown in `bufnr` now.
--- @param bufnr integer
function M.visible(bufnr)
  local state = M.buffers[bufnr]
  return state ~= nil and state.item ~= nil and state.item.tick == vim.b[bufnr].changedtick
end

--- Draw `state.item`.
--- @param bufnr integer
--- @param state table
local function render(bufnr, state)
  local item, hl = state.item, state.hl_group
  local row, col, shown
  if item.replacement then
    local r = item.replacement
    row, col = r.end_row, #(vim.api.nvim_buf_get_lines(bufnr, r.end_row, r.end_row + 1, false)[1] or '')
    shown = ('  ⟵ metagpt replaces lines %d-%d with:\n%s'):format(r.start_row + 1, r.end_row + 1,
      table.concat(r.lines, '\n'))
  else
    row, col, shown = item.row, item.col, item.rest
    if item.replaced ~= '' and not shown:find('\n', 1, true) and vim.endswith(shown, item.replaced) then
      shown = shown:sub(1, #shown - #item.replaced) -- the closer the offer replaces stands there already
    end
  end
  local lines = vim.split(shown, '\n', { plain = true })
  local virt_lines = {}
  for i = 2, #lines do
    virt_lines[#virt_lines + 1] = { { lines[i], hl } }
  end
  vim.api.nvim_buf_clear_namespace(bufnr, M.namespace, 0, -1)
  vim.api.nvim_buf_set_extmark(bufnr, M.namespace, row, col, {
    virt_text = lines[1] ~= '' and { { lines[1], hl } } or nil,
    virt_text_pos = 'inline',
    virt_lines = #virt_lines > 0 and virt_lines or nil,
    hl_mode = 'combine',
  })
end

--- Show `item` (an lsp.InlineCompletionItem) in `bufnr`.
--- @param bufnr integer
--- @param state table
--- @param item lsp.InlineCompletionItem
--- @param encoding string
local function show(bufnr, state, item, encoding)
  local text = type(item.insertText) == 'table' and item.insertText.value or item.insertText
  if type(text) ~= 'string' or text == '' then
    return
  end
  local cursor = vim.api.nvim_win_get_cursor(0)
  local row, col = cursor[1] - 1, cursor[2]
  local start_row, start_col, end_row, end_col = row, col, row, col
  if item.range then
    start_row, start_col = to_buffer(bufnr, item.range.start, encoding)
    end_row, end_col = to_buffer(bufnr, item.range['end'], encoding)
  end
  local starts_before = start_row < row or (start_row == row and start_col <= col)
  local ends_after = end_row > row or (end_row == row and end_col >= col)
  local typed = starts_before and text_between(bufnr, start_row, start_col, row, col) or nil
  local shown
  if typed and ends_after and vim.startswith(text, typed) then
    -- An insertion at the cursor (after what the offer's range already holds before it).
    shown = {
      row = row,
      col = col,
      rest = text:sub(#typed + 1),
      replaced = text_between(bufnr, row, col, end_row, end_col),
      tail = line_tail(bufnr, row, col),
    }
    if shown.rest == '' then
      return
    end
  else
    -- A replacement of text before the cursor: the new text as virtual lines under the range; accepted whole only.
    shown = { replacement = { start_row = start_row, start_col = start_col, end_row = end_row, end_col = end_col,
      lines = vim.split(text, '\n', { plain = true }) } }
  end
  shown.tick = vim.b[bufnr].changedtick
  state.item = shown
  render(bufnr, state)
end

--- After a keystroke: when what was typed since the offer was shown is its beginning (and the rest of the line is
--- as it was), keep the rest of the offer shown; false when the keystroke was anything else.
--- @param bufnr integer
--- @param state table
--- @return boolean
local function type_through(bufnr, state)
  local item = state.item
  if not item or item.replacement or vim.api.nvim_get_current_buf() ~= bufnr then
    return false
  end
  local cursor = vim.api.nvim_win_get_cursor(0)
  local row, col = cursor[1] - 1, cursor[2]
  if row < item.row or (row == item.row and col < item.col) then
    return false
  end
  local typed = text_between(bufnr, item.row, item.col, row, col)
  if #typed >= #item.rest or not vim.startswith(item.rest, typed) or line_tail(bufnr, row, col) ~= item.tail then
    return false
  end
  item.row, item.col, item.rest = row, col, item.rest:sub(#typed + 1)
  item.tick = vim.b[bufnr].changedtick
  render(bufnr, state)
  return true
end

--- Send the fallback request for the cursor now (the debounce has run out).
--- @param bufnr integer
function M.request(bufnr)
  local state = M.buffers[bufnr]
  local client = state and vim.lsp.get_client_by_id(state.client_id)
  if not client or vim.api.nvim_get_current_buf() ~= bufnr or not vim.api.nvim_get_mode().mode:match('^i') then
    return
  end
  local tick, cursor = vim.b[bufnr].changedtick, vim.api.nvim_win_get_cursor(0)
  local params = {
    textDocument = vim.lsp.util.make_text_document_params(bufnr),
    position = vim.lsp.util.make_position_params(0, client.offset_encoding).position,
    context = { triggerKind = 2 }, -- Automatic
  }
  local request_id
  local ok, id = client:request(M.METHOD, params, function(err, result)
    if state.request_id ~= request_id then
      return -- cancelled or superseded
    end
    state.request_id = nil
    if err then
      if err.code == METHOD_NOT_FOUND then
        vim.notify_once('metagpt-lsp: this server has no ' .. M.METHOD .. '; ghost text is off (upgrade the server)',
          vim.log.levels.WARN)
        return M.detach(bufnr)
      end
      vim.lsp.log.warn('metagpt_lsp ghost text:', err.message)
      return
    end
    local still_here = vim.b[bufnr].changedtick == tick
      and vim.api.nvim_get_current_buf() == bufnr
      and vim.deep_equal(vim.api.nvim_win_get_cursor(0), cursor)
      and vim.api.nvim_get_mode().mode:match('^i')
    local item = result and result ~= vim.NIL and (result.items or result)[1]
    if still_here and item then
      show(bufnr, state, item, client.offset_encoding)
    end
  end, bufnr)
  request_id = ok and id or nil
  state.request_id = request_id
end

--- A keystroke: type through the offer shown, or hide it, cancel, and ask again after the debounce.
--- @param bufnr integer
function M.on_keystroke(bufnr)
  local state = M.buffers[bufnr]
  if not state or type_through(bufnr, state) then
    return
  end
  M.dismiss(bufnr)
  cancel_pending(state)
  state.timer = state.timer or vim.uv.new_timer()
  state.timer:start(state.debounce_ms, 0, vim.schedule_wrap(function()
    M.request(bufnr)
  end))
end

--- Put `lines` over the range and the cursor after them.
local function put(bufnr, start_row, start_col, end_row, end_col, lines)
  vim.api.nvim_buf_set_text(bufnr, start_row, start_col, end_row, end_col, lines)
  local row = start_row + #lines - 1
  local col = (#lines == 1 and start_col or 0) + #lines[#lines]
  vim.api.nvim_win_set_cursor(0, { row + 1, col })
end

--- Accept the shown offer, whole or its next word or line; false when nothing is shown (or the buffer moved on).
--- Accepting a part inserts it at the cursor and keeps the rest shown.
--- @param bufnr integer
--- @param what? 'all'|'word'|'line' (default 'all')
--- @return boolean
function M.accept(bufnr, what)
  if not M.visible(bufnr) then
    return false
  end
  local state = M.buffers[bufnr]
  local item = state.item
  if item.replacement then
    local r = item.replacement
    M.dismiss(bufnr)
    put(bufnr, r.start_row, r.start_col, r.end_row, r.end_col, r.lines)
    return true
  end
  local part = offer_parts.take(item.rest, what or 'all')
  if part == item.rest then
    M.dismiss(bufnr)
    local end_row, end_col = advance(item.row, item.col, item.replaced)
    put(bufnr, item.row, item.col, end_row, end_col, vim.split(part, '\n', { plain = true }))
    return true
  end
  put(bufnr, item.row, item.col, item.row, item.col, vim.split(part, '\n', { plain = true }))
  local cursor = vim.api.nvim_win_get_cursor(0)
  item.row, item.col, item.rest = cursor[1] - 1, cursor[2], item.rest:sub(#part + 1)
  item.tick = vim.b[bufnr].changedtick
  render(bufnr, state)
  return true
end

--- The text shown now (the rest of the offer), or nil.
--- @param bufnr integer
--- @return string?
function M.shown_text(bufnr)
  if not M.visible(bufnr) then
    return nil
  end
  local item = M.buffers[bufnr].item
  return item.replacement and table.concat(item.replacement.lines, '\n') or item.rest
end

--- Start ghost text for `bufnr` served by `client_id`.
--- @param bufnr integer
--- @param client_id integer
--- @param opts table the `inline` options
function M.attach(bufnr, client_id, opts)
  if M.buffers[bufnr] then
    M.buffers[bufnr].client_id = client_id
    return
  end
  M.buffers[bufnr] = { client_id = client_id, debounce_ms = opts.debounce_ms, hl_group = opts.hl_group }
  local group = vim.api.nvim_create_augroup('metagpt_lsp.ghost_text.' .. bufnr, { clear = true })
  vim.api.nvim_create_autocmd({ 'InsertEnter', 'TextChangedI', 'CursorMovedI' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.on_keystroke(bufnr)
    end,
  })
  vim.api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      local state = M.buffers[bufnr]
      if state then
        cancel_pending(state)
      end
      M.dismiss(bufnr)
    end,
  })
  vim.api.nvim_create_autocmd({ 'LspDetach', 'BufWipeout' }, {
    group = group,
    buffer = bufnr,
    callback = function(args)
      if args.event == 'BufWipeout' or (args.data and args.data.client_id == client_id) then
        M.detach(bufnr)
      end
    end,
  })
end

--- Stop ghost text for `bufnr`.
--- @param bufnr integer
function M.detach(bufnr)
  local state = M.buffers[bufnr]
  if not state then
    return
  end
  cancel_pending(state)
  if state.timer and not state.timer:is_closing() then
    state.timer:close()
  end
  M.dismiss(bufnr)
  M.buffers[bufnr] = nil
  pcall(vim.api.nvim_del_augroup_by_name, 'metagpt_lsp.ghost_text.' .. bufnr)
end

return M
