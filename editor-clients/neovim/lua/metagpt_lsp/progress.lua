--- What the agents are doing, from the server's `$/progress` (the `LspProgress` autocmd): echoed in the command
--- line or sent to vim.notify, and always available to a statusline through `statusline()`.

local server = require('metagpt_lsp.server')

local M = {}

--- Work in progress by token: { title, message, percentage }.
--- @type table<string|integer, {title: string, message: string?, percentage: integer?}>
M.active = {}

--- One line for a statusline: the newest task in progress, or '' when the agents are idle.
--- @return string
function M.statusline()
  local newest
  for _, task in pairs(M.active) do
    if not newest or task.started > newest.started then
      newest = task
    end
  end
  if not newest then
    return ''
  end
  local text = 'metagpt: ' .. newest.title
  if newest.message and newest.message ~= '' then
    text = text .. ' — ' .. newest.message
  end
  if newest.percentage and newest.percentage > 0 then
    text = text .. (' (%d%%)'):format(newest.percentage)
  end
  return text
end

--- @param text string
--- @param show 'echo'|'notify'|false
local function tell(text, show)
  if show == 'echo' then
    vim.api.nvim_echo({ { text, 'ModeMsg' } }, false, {})
  elseif show == 'notify' then
    vim.notify(text, vim.log.levels.INFO)
  end
end

local sequence = 0

--- @param value table the `$/progress` value
--- @param token string|integer
--- @param show 'echo'|'notify'|false
function M.update(token, value, show)
  if value.kind == 'begin' then
    sequence = sequence + 1
    M.active[token] = { title = value.title or '', message = value.message, percentage = value.percentage,
      started = sequence }
  elseif value.kind == 'report' and M.active[token] then
    M.active[token].message = value.message or M.active[token].message
    M.active[token].percentage = value.percentage or M.active[token].percentage
  elseif value.kind == 'end' then
    local task = M.active[token]
    M.active[token] = nil
    if task then
      tell(('metagpt: %s — %s'):format(task.title, value.message or 'done'), show)
    end
    vim.cmd.redrawstatus({ bang = true })
    return
  end
  tell(M.statusline(), show)
  vim.cmd.redrawstatus({ bang = true })
end

--- Listen to LspProgress for the metagpt-lsp client.
--- @param show 'echo'|'notify'|false
function M.listen(show)
  local group = vim.api.nvim_create_augroup('metagpt_lsp.progress', { clear = true })
  vim.api.nvim_create_autocmd('LspProgress', {
    group = group,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      local params = args.data.params
      if client and client.name == server.NAME and params and type(params.value) == 'table' then
        M.update(params.token, params.value, show)
      end
    end,
  })
end

return M
