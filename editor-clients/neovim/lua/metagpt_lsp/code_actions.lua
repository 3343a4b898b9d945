--- "Explain and fix" and "Generate code" at the cursor: list the server's code actions (instant, no model),
--- pick ours, resolve it (the agents work now), then apply the versioned edit.
---
--- Listing asks no model; `codeAction/resolve` is where the team runs, so it can take a while: it is sent
--- asynchronously and progress shows meanwhile. The edit is applied only if the buffer is still at the version the
--- edit was computed for; otherwise nothing changes and the user is told. When an action finishes (applied or not)
--- the `User MetagptActionDone` autocmd fires with `data = { action, applied, message }`.

local server = require('metagpt_lsp.server')

local M = {}

M.FIX_PREFIX = 'Explain and fix'
M.GENERATE_KIND = 'refactor.rewrite.metagpt.generate'
local CONTENT_MODIFIED = -32801

--- @param action string
--- @param applied boolean
--- @param message string
local function done(action, applied, message)
  if message ~= '' then
    vim.notify('metagpt-lsp: ' .. message, applied and vim.log.levels.INFO or vim.log.levels.WARN)
  end
  vim.api.nvim_exec_autocmds('User', {
    pattern = 'MetagptActionDone',
    data = { action = action, applied = applied, message = message },
  })
end

--- The buffer the edit is for has moved past the version it was computed for.
--- @param edit lsp.WorkspaceEdit
--- @return string? uri of the stale document
local function stale_document(edit)
  for _, change in ipairs(edit.documentChanges or {}) do
    local doc = change.textDocument
    if doc and doc.version and doc.version ~= vim.NIL then
      local bufnr = vim.uri_to_bufnr(doc.uri)
      if vim.api.nvim_buf_is_loaded(bufnr) and vim.lsp.util.buf_versions[bufnr] ~= doc.version then
        return doc.uri
      end
    end
  end
end

--- Apply a resolved action: its edit, or else its command (then the server applies via workspace/applyEdit).
--- @param client vim.lsp.Client
--- @param bufnr integer
--- @param name string
--- @param action lsp.CodeAction
local function apply(client, bufnr, name, action)
  if action.edit then
    local stale = stale_document(action.edit)
    if stale then
      return done(name, false, 'the buffer changed while the agents worked; nothing was applied (' .. stale .. ')')
    end
    vim.lsp.util.apply_workspace_edit(action.edit, client.offset_encoding)
    if action.command then -- the protocol's order: the edit first, then the command
      client:exec_cmd(action.command, { bufnr = bufnr })
    end
    return done(name, true, '')
  end
  if action.command then
    return client:exec_cmd(action.command, { bufnr = bufnr }, function(err, result)
      if err then
        return done(name, false, err.message)
      end
      done(name, result == true, result == true and '' or 'no edit was applied')
    end)
  end
  done(name, false, 'the agents found no safe edit (see the messages above)')
end

--- Resolve (when needed) and apply the chosen action.
--- @param client vim.lsp.Client
--- @param bufnr integer
--- @param name string
--- @param action lsp.CodeAction
local function resolve_and_apply(client, bufnr, name, action)
  if action.edit or action.data == nil or not client:supports_method('codeAction/resolve') then
    return apply(client, bufnr, name, action)
  end
  client:request('codeAction/resolve', action, function(err, resolved)
    if err then
      local message = err.code == CONTENT_MODIFIED
          and 'the buffer changed while the agents worked; nothing was applied'
        or err.message
      return done(name, false, message)
    end
    apply(client, bufnr, name, resolved or action)
  end, bufnr)
end

--- Ask for code actions and run the first one `pick` accepts.
--- @param name string
--- @param params lsp.CodeActionParams
--- @param pick fun(action: lsp.CodeAction): boolean
local function run_first(name, client, bufnr, params, pick)
  client:request('textDocument/codeAction', params, function(err, actions)
    if err then
      return done(name, false, err.message)
    end
    for _, action in ipairs(actions or {}) do
      if pick(action) then
        return resolve_and_apply(client, bufnr, name, action)
      end
    end
    done(name, false, 'nothing to do here (no ' .. name .. ' action at the cursor)')
  end, bufnr)
end

--- An LSP diagnostic for a vim.Diagnostic (the original one when an LSP server produced it).
--- @param bufnr integer
--- @param diagnostic vim.Diagnostic
--- @param encoding string
--- @return lsp.Diagnostic
function M.to_lsp(bufnr, diagnostic, encoding)
  local original = diagnostic.user_data and diagnostic.user_data.lsp
  if original then
    return original
  end
  local function position(row, col)
    local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
    return { line = row, character = vim.str_utfindex(line, encoding, math.min(col, #line), false) }
  end
  local end_lnum = diagnostic.end_lnum or diagnostic.lnum
  local end_col = diagnostic.end_col or diagnostic.col
  return {
    range = { start = position(diagnostic.lnum, diagnostic.col), ['end'] = position(end_lnum, end_col) },
    severity = diagnostic.severity,
    message = diagnostic.message,
    source = diagnostic.source,
    code = diagnostic.code,
  }
end

--- Diagnostics (any source) whose range holds the cursor, most severe first; else those on the cursor's line.
--- @param bufnr integer
--- @return vim.Diagnostic[]
function M.diagnostics_at_cursor(bufnr)
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  row = row - 1
  local on_line, covering = {}, {}
  for _, d in ipairs(vim.diagnostic.get(bufnr)) do
    local end_lnum = d.end_lnum or d.lnum
    if d.lnum <= row and row <= end_lnum then
      table.insert(on_line, d)
      local after_start = row > d.lnum or col >= d.col
      local before_end = row < end_lnum or col <= (d.end_col or d.col)
      if after_start and before_end then
        table.insert(covering, d)
      end
    end
  end
  local found = #covering > 0 and covering or on_line
  table.sort(found, function(a, b)
    return a.severity < b.severity
  end)
  return found
end

--- Explain and fix the diagnostic under the cursor (asks which one when several are there).
function M.fix()
  local bufnr = vim.api.nvim_get_current_buf()
  local client = server.client_for(bufnr)
  if not client then
    return done('fix', false, '')
  end
  local found = M.diagnostics_at_cursor(bufnr)
  if #found == 0 then
    return done('fix', false, 'no diagnostic under the cursor')
  end
  local function fix(diagnostic)
    if not diagnostic then
      return done('fix', false, '')
    end
    local lsp_diagnostic = M.to_lsp(bufnr, diagnostic, client.offset_encoding)
    local params = {
      textDocument = vim.lsp.util.make_text_document_params(bufnr),
      range = lsp_diagnostic.range,
      context = { diagnostics = { lsp_diagnostic }, only = { 'quickfix' }, triggerKind = 1 },
    }
    run_first('fix', client, bufnr, params, function(action)
      return vim.startswith(action.title, M.FIX_PREFIX)
    end)
  end
  if #found == 1 then
    return fix(found[1])
  end
  vim.ui.select(found, {
    prompt = 'Explain and fix which diagnostic?',
    format_item = function(d)
      return ('[%s] %s'):format(d.source or '?', d.message)
    end,
  }, fix)
end

--- Generate code at the cursor: a stub function's body, or the code a comment line asks for.
function M.generate()
  local bufnr = vim.api.nvim_get_current_buf()
  local client = server.client_for(bufnr)
  if not client then
    return done('generate', false, '')
  end
  local params = vim.lsp.util.make_range_params(0, client.offset_encoding)
  params.context = { diagnostics = {}, only = { M.GENERATE_KIND }, triggerKind = 1 }
  run_first('generate', client, bufnr, params, function(action)
    return action.kind == M.GENERATE_KIND
  end)
end

return M
