--- Drive: type in insert mode at the end of a Python file; ghost text appears (as the extmark of the expected
--- implementation: Neovim 0.12's native inline completion or the plugin's 0.11 fallback); the dismiss key hides it
--- without touching the buffer; one more keystroke asks again; the accept key puts the suggestion in the buffer.
---
--- nvim --headless --clean -l inline_ghost_text.lua PLUGIN_DIR VERDICT_JSON FILE EXPECTED_KIND TYPED SECOND_KEY
---      [HANGING_KEY]
--- EXPECTED_KIND: 'native' or 'fallback'. TYPED: the text typed on a new last line. SECOND_KEY: typed after the
--- dismissal. HANGING_KEY (optional): typed after the dismissal, before SECOND_KEY; the model never answers what
--- it leads to, and the next keystroke (a backspace) must cancel that request.

local h = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), 'harness.lua')).start(arg)
local file, expected_kind, typed, second_key, hanging_key = unpack(h.args)

h:run(function()
  local requests, cancelled, in_flight = {}, {}, {}
  vim.api.nvim_create_autocmd('LspRequest', {
    callback = function(args)
      local request, id = args.data.request, args.data.request_id
      local counts = request.type == 'pending' and requests or request.type == 'cancel' and cancelled or nil
      if counts then
        counts[request.method] = (counts[request.method] or 0) + 1
      end
      in_flight[id] = request.type == 'pending' and request.method or nil
    end,
  })
  local function asking()
    return vim.tbl_contains(vim.tbl_values(in_flight), 'metagpt/inlineCompletion')
      or vim.tbl_contains(vim.tbl_values(in_flight), 'textDocument/inlineCompletion')
  end
  local bufnr = h:open_attached({ settings = { inline = { debounceMs = 20 } }, inline = { debounce_ms = 50 } }, file)
  h:record('kind', require('metagpt_lsp.inline').kind(require('metagpt_lsp.config').current.inline))

  local function shown()
    return h.ghosts(bufnr)[expected_kind]
  end
  local steps
  --- Type `keys`, then run step `next` once Neovim has handled them and fired its autocmds: the <Cmd> runs after
  --- the keys, and what it schedules runs when insert mode next waits for input (after TextChangedI).
  local function feed(keys, next)
    local key = type(next) == 'number' and tostring(next) or ('%q'):format(next)
    local after = next and ('<Cmd>lua vim.schedule(_G.drive_steps[%s])<CR>'):format(key) or ''
    vim.api.nvim_feedkeys(vim.keycode(keys .. after), 't', false)
  end

  -- Each step runs inside insert mode, in a scheduled callback, and types the next keys.
  steps = {
    function()
      h:wait('first ghost text', 20000, shown)
      h:record('first_ghost', h.ghosts(bufnr))
      h:record('line_before_dismiss', vim.api.nvim_get_current_line())
      feed('<C-]>', 2)
    end,
    function()
      h:wait('dismissed', 5000, function()
        return not shown()
      end)
      h:record('line_after_dismiss', vim.api.nvim_get_current_line())
      if hanging_key and hanging_key ~= '' then
        feed(hanging_key, 'hang')
      else
        feed(second_key, 3)
      end
    end,
    hang = function()
      h:wait('request in flight after the hanging key', 10000, asking)
      feed('<BS>', 'cancel')
    end,
    cancel = function()
      h:wait('request cancelled by the next keystroke', 5000, function()
        return next(cancelled) ~= nil and not asking()
      end)
      feed(second_key, 3)
    end,
    function()
      h:wait('second ghost text', 20000, shown)
      h:record('second_ghost', h.ghosts(bufnr))
      feed('<C-l>', 4)
    end,
    function()
      h:wait('accepted', 5000, function()
        return vim.api.nvim_get_current_line() ~= typed .. second_key
      end)
      h:record('cursor', vim.api.nvim_win_get_cursor(0))
      feed('<Esc>')
    end,
  }
  _G.drive_steps = steps
  vim.schedule(steps[1])
  vim.api.nvim_feedkeys('Go' .. typed, 'tx!', false) -- returns when <Esc> ends insert mode
  h:record('mode_after', vim.api.nvim_get_mode().mode)
  h:record('final_line', vim.api.nvim_buf_get_lines(bufnr, -2, -1, false)[1])
  h:record('requests', requests)
  h:record('cancelled', cancelled)
end)
