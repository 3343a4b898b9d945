--- Ghost text for Neovim 0.11, which has no `textDocument/inlineCompletion`: the server's fallback request
--- `metagpt/inlineCompletion` (same params and result), shown as an extmark.
---
--- In insert mode each keystroke (TextChangedI, CursorMovedI) hides what is shown, cancels the request in flight
--- (`$/cancelRequest`) and restarts a short debounce; when it runs out the request is sent. An answer is shown only
--- if the buffer and the cursor are still where they were when it was asked. Accepting applies the item's edit
--- (its range, in the client's position encoding) and puts the cursor after the inserted text; leaving insert
--- mode dismisses.

local M = {}

M.METHOD = 'metagpt/inlineCompletion'
M.namespace = vim.api.nvim_create_namespace('metagpt_lsp.ghost_text')
local METHOD_NOT_FOUND = -32601

--- Per buffer: { client_id, debounce_ms, hl_group, timer, request_id, item }.
--- item = { lines, start_row, start_col, end_row, end_col, tick } in buffer (byte) coordinates.
--- @type table<integer, table>
M.buffers = {}

--- @param bufnr integer
--- @param position lsp.Position
--- @param encoding string
--- @return integer row, integer col byte column
local function to_buffer(bufnr, position, encoding)
  local line = vim.api.nvim_buf_get_lines(bufnr, position.line, position.line + 1, false)[1] or ''
  return position.line, vim.str_byteindex(line, encoding, position.character, false)
end

--- Length of the longest common prefix of two strings.
local function common_prefix(a, b)
  local i = 0
  while i < #a and i < #b and a:byte(i + 1) == b:byte(i + 1) do
    i = i + 1
  end
  return i
end

--- The (row, col) reached after walking `text` from (row, col).
local function advance(row, col, text)
  local lines = vim.split(text, '\n', { plain = true })
  if #lines == 1 then
    return row, col + #text
  end
  return row + #lines - 1, #lines[#lines]
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
  local start_row, start_col, end_row, end_col = cursor[1] - 1, cursor[2], cursor[1] - 1, cursor[2]
  if item.range then
    start_row, start_col = to_buffer(bufnr, item.range.start, encoding)
    end_row, end_col = to_buffer(bufnr, item.range['end'], encoding)
  end
  local old = table.concat(vim.api.nvim_buf_get_text(bufnr, start_row, start_col, end_row, end_col, {}), '\n')
  local hl = state.hl_group
  local row, col, shown
  local same = common_prefix(old, text)
  if same == #old then
    -- An insertion (perhaps after what was already typed): the new part goes inline where the old text ends.
    row, col = advance(start_row, start_col, old)
    shown = text:sub(same + 1)
  else
    -- A replacement: the new text as virtual lines under the range.
    row, col = end_row, #(vim.api.nvim_buf_get_lines(bufnr, end_row, end_row + 1, false)[1] or '')
    shown = ('  ⟵ metagpt replaces lines %d-%d with:\n%s'):format(start_row + 1, end_row + 1, text)
  end
  if shown == '' then
    return
  end
  local lines = vim.split(shown, '\n', { plain = true })
  local virt_lines = {}
  for i = 2, #lines do
    virt_lines[#virt_lines + 1] = { { lines[i], hl } }
  end
  vim.api.nvim_buf_clear_namespace(bufnr, M.namespace, 0, -1)
  vim.api.nvim_buf_set_extmark(bufnr, M.namespace, row, col, {
    virt_text = { { lines[1], hl } },
    virt_text_pos = 'inline',
    virt_lines = #virt_lines > 0 and virt_lines or nil,
    hl_mode = 'combine',
  })
  state.item = {
    lines = vim.split(text, '\n', { plain = true }),
    start_row = start_row,
    start_col = start_col,
    end_row = end_row,
    end_col = end_col,
    tick = vim.b[bufnr].changedtick,
  }
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

--- A keystroke: hide, cancel, and ask again after the debounce.
--- @param bufnr integer
function M.on_keystroke(bufnr)
  local state = M.buffers[bufnr]
  if not state then
    return
  end
  M.dismiss(bufnr)
  cancel_pending(state)
  state.timer = state.timer or vim.uv.new_timer()
  state.timer:start(state.debounce_ms, 0, vim.schedule_wrap(function()
    M.request(bufnr)
  end))
end

--- Apply the shown item; false when nothing is shown (or the buffer moved on since).
--- @param bufnr integer
--- @return boolean
function M.accept(bufnr)
  if not M.visible(bufnr) then
    return false
  end
  local item = M.buffers[bufnr].item
  M.dismiss(bufnr)
  vim.api.nvim_buf_set_text(bufnr, item.start_row, item.start_col, item.end_row, item.end_col, item.lines)
  local last = item.lines[#item.lines]
  local row = item.start_row + #item.lines - 1
  local col = (#item.lines == 1 and item.start_col or 0) + #last
  vim.api.nvim_win_set_cursor(0, { row + 1, col })
  return true
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
  vim.api.nvim_create_autocmd({ 'TextChangedI', 'CursorMovedI' }, {
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
