--- Drive: a multi-line offer on the empty body line of a stub, through the expected implementation (Neovim 0.12's
--- native inline completion or the plugin's 0.11 fallback). It is shown whole (first line inline, the others as
--- virtual lines); a keystroke that is not its beginning hides it and a backspace brings it back; typing its first
--- characters keeps the rest shown; the accept-word key, then the accept-line key insert those parts and keep the
--- rest shown; the accept key inserts the rest.
---
--- nvim --headless --clean -l inline_multi_line.lua PLUGIN_DIR VERDICT_JSON FILE EXPECTED_KIND OTHER_KEY TYPED
--- FILE ends with a line of indentation only (the cursor goes to its end). OTHER_KEY: a key that is not the start of
--- the offer. TYPED: the first characters of the offer.

local h = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), 'harness.lua')).start(arg)
local file, expected_kind, other_key, typed = unpack(h.args)

local METHODS = { native = 'textDocument/inlineCompletion', fallback = 'metagpt/inlineCompletion' }

h:run(function()
  local counts = { pending = {}, complete = {}, cancel = {} }
  vim.api.nvim_create_autocmd('LspRequest', {
    callback = function(args)
      local request = args.data.request
      local count = counts[request.type]
      if count then
        count[request.method] = (count[request.method] or 0) + 1
      end
    end,
  })
  local method = METHODS[expected_kind]
  local function count(kind)
    return counts[kind][method] or 0
  end
  local bufnr = h:open_attached({ settings = { inline = { debounceMs = 20 } }, inline = { debounce_ms = 50 } }, file)
  h:record('kind', require('metagpt_lsp.inline').kind(require('metagpt_lsp.config').current.inline))

  local function shown()
    return h.ghosts(bufnr)[expected_kind]
  end
  local function last_lines(n)
    return vim.api.nvim_buf_get_lines(bufnr, -n - 1, -1, false)
  end
  local function settled()
    return count('pending') == count('complete') + count('cancel')
  end
  local offer, asked
  local initial_lines = #vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  --- Type `keys`, then run step `next` once Neovim has handled them (see inline_ghost_text.lua).
  local function feed(keys, next)
    local after = next and ('<Cmd>lua vim.schedule(_G.drive_steps[%d])<CR>'):format(next) or ''
    vim.api.nvim_feedkeys(vim.keycode(keys .. after), 't', false)
  end

  local steps = {
    function()
      h:wait('the offer shown', 20000, shown)
      offer = shown()
      h:record('offer', offer)
      h:record('ghosts', h.ghosts(bufnr))
      feed(other_key, 2)
    end,
    function()
      local sent = count('pending')
      h:record('hidden_at_once', not shown())
      h:wait('hidden, and the request after the other key answered', 20000, function()
        return not shown() and count('pending') > sent and settled()
      end)
      h:record('line_after_other_key', vim.api.nvim_get_current_line())
      feed('<BS>', 3)
    end,
    function()
      h:wait('the offer shown again', 20000, function()
        return shown() == offer
      end)
      asked = count('pending')
      feed(typed, 4)
    end,
    function()
      h:record('kept_at_once', shown())
      h:wait('the rest shown after typing through', 20000, function()
        return shown() == offer:sub(#typed + 1) and settled()
      end)
      h:record('typed_line', vim.api.nvim_get_current_line())
      h:record('requests_typing_through', count('pending') - asked)
      feed('<M-Right>', 5)
    end,
    function()
      h:record('rest_after_word_at_once', shown())
      h:wait('a word accepted', 20000, function()
        return vim.api.nvim_get_current_line() ~= ('    ' .. typed)
      end)
      h:record('after_word', { line = vim.api.nvim_get_current_line(), cursor = vim.api.nvim_win_get_cursor(0) })
      h:wait('the rest shown after the word', 20000, function()
        return shown() and vim.startswith(offer, vim.api.nvim_get_current_line():sub(5) .. shown())
      end)
      h:record('rest_after_word', shown())
      feed('<M-C-Right>', 6)
    end,
    function()
      h:record('rest_after_line_at_once', shown())
      h:wait('a line accepted', 20000, function()
        return #vim.api.nvim_buf_get_lines(bufnr, 0, -1, false) > initial_lines
      end)
      h:record('after_line', { lines = last_lines(2), cursor = vim.api.nvim_win_get_cursor(0) })
      h:wait('the rest shown after the line', 20000, shown)
      h:record('rest_after_line', shown())
      feed('<C-l>', 7)
    end,
    function()
      h:wait('the rest accepted', 20000, function()
        return vim.api.nvim_get_current_line() ~= ''
      end)
      h:record('after_all', { lines = last_lines(2), cursor = vim.api.nvim_win_get_cursor(0) })
      feed('<Esc>')
    end,
  }
  _G.drive_steps = steps
  vim.schedule(steps[1])
  vim.api.nvim_feedkeys('GA', 'tx!', false) -- returns when <Esc> ends insert mode
  h:record('mode_after', vim.api.nvim_get_mode().mode)
  h:record('counts', counts)
end)
