--- The `:Metagpt*` user commands, and the server commands behind them (`workspace/executeCommand`).
---
--- | command                       | does                                                                  |
--- |-------------------------------|-----------------------------------------------------------------------|
--- | :MetagptFix                   | explain and fix the diagnostic under the cursor                       |
--- | :MetagptGenerate              | generate code at the cursor (stub function or comment line)           |
--- | :MetagptReview [file|function]| review what changed since HEAD in the file, or the function at cursor |
--- | :MetagptStatus                | endpoint, model, key set or not, tasks in flight, tokens spent        |
--- | :MetagptTrace                 | every message between the agents in the last task, in a scratch split |
--- | :MetagptTeam                  | the cooperation graph, in a scratch split                             |

local server = require('metagpt_lsp.server')

local M = {}

--- Run a server command and hand its result to `on_result` (errors are shown, not raised).
--- @param command string
--- @param arguments table
--- @param on_result? fun(result: any)
function M.execute(command, arguments, on_result)
  local client = server.any_client()
  if not client then
    server.client_for(0) -- explains why
    return
  end
  local bufnr = vim.api.nvim_get_current_buf()
  local call = { title = command, command = command, arguments = arguments }
  client:exec_cmd(call, { bufnr = bufnr }, function(err, result)
    if err then
      vim.notify(('metagpt-lsp: %s failed: %s'):format(command, err.message), vim.log.levels.ERROR)
      return
    end
    if on_result then
      on_result(result)
    end
  end)
end

--- Show text in a read-only scratch split.
--- @param name string
--- @param text string
local function show_scratch(name, text)
  vim.cmd('botright new')
  local bufnr = vim.api.nvim_get_current_buf()
  vim.bo[bufnr].buftype = 'nofile'
  vim.bo[bufnr].bufhidden = 'wipe'
  vim.bo[bufnr].swapfile = false
  pcall(vim.api.nvim_buf_set_name, bufnr, name)
  vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, vim.split(text, '\n', { plain = true }))
  vim.bo[bufnr].modifiable = false
end

--- @param scope? 'file'|'function'
function M.review(scope)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = server.client_for(bufnr)
  if not client then
    return
  end
  if scope == 'function' then
    local document = vim.lsp.util.make_text_document_params(bufnr)
    local position = vim.lsp.util.make_position_params(0, client.offset_encoding).position
    M.execute('metagpt.reviewFunction', {
      { uri = document.uri, version = vim.lsp.util.buf_versions[bufnr], position = position },
    })
  else
    M.execute('metagpt.reviewFile', { { uri = vim.uri_from_bufnr(bufnr) } }, function(count)
      vim.notify(('metagpt-lsp: review done, %d finding(s)'):format(tonumber(count) or 0))
    end)
  end
end

--- @param on_result? fun(report: table)
function M.status(on_result)
  M.execute('metagpt.status', {}, function(report)
    local lines = {}
    for _, key in ipairs(vim.tbl_keys(report or {})) do
      table.insert(lines, ('%s: %s'):format(key, vim.inspect(report[key])))
    end
    table.sort(lines)
    vim.notify('metagpt-lsp status\n' .. table.concat(lines, '\n'))
    if on_result then
      on_result(report)
    end
  end)
end

function M.trace()
  M.execute('metagpt.trace', {}, function(text)
    show_scratch('metagpt://trace', tostring(text))
  end)
end

function M.team()
  M.execute('metagpt.team', {}, function(graph)
    show_scratch('metagpt://team', tostring(graph and graph.text or ''))
  end)
end

--- Define the user commands (idempotent).
function M.create_user_commands()
  local code_actions = require('metagpt_lsp.code_actions')
  local define = vim.api.nvim_create_user_command
  define('MetagptFix', code_actions.fix, { desc = 'metagpt-lsp: explain and fix the diagnostic under the cursor' })
  define('MetagptGenerate', code_actions.generate, { desc = 'metagpt-lsp: generate code at the cursor' })
  define('MetagptReview', function(args)
    M.review(args.args ~= '' and args.args or 'file')
  end, {
    nargs = '?',
    complete = function()
      return { 'file', 'function' }
    end,
    desc = 'metagpt-lsp: review what changed since HEAD (file) or the function at the cursor',
  })
  define('MetagptStatus', function()
    M.status()
  end, { desc = 'metagpt-lsp: endpoint, model, tasks in flight, tokens' })
  define('MetagptTrace', M.trace, { desc = "metagpt-lsp: the last task's messages between the agents" })
  define('MetagptTeam', M.team, { desc = "metagpt-lsp: the agents' cooperation graph" })
end

return M
